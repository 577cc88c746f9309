"""Eq. 6: the realistic face x = G_real(w*) of an inverted (or augmented) W+ code. Pure torch."""
from __future__ import annotations

import torch

from swiftavatar.models.generator import SemanticGenerator
from swiftavatar.production.wplus import frozen, generator_device


@torch.no_grad()
def generate_real(G_real: SemanticGenerator, latents: torch.Tensor, *, batch_size: int = 64,
                  noise: str = "const", device: torch.device | str | None = None,
                  with_masks: bool = False):
    """Eq. 6: x = G_real(w) for W+ codes (N, n_latent, D) -> images (N, 3, H, W) in [-1, 1];
    with_masks: (images, masks (N, H, W) uint8, the argmax of G_real's segmentation)."""
    dev = generator_device(G_real, device)
    R, D = G_real.n_latent, G_real.config.style_dim
    if latents.ndim != 3 or latents.shape[1:] != (R, D):
        raise ValueError(f"latents must be W+ (N, {R}, {D}), got {tuple(latents.shape)}")
    out, masks = [], []
    with frozen(G_real):
        for start in range(0, latents.shape[0], batch_size):
            w = latents[start:start + batch_size].to(dev)
            image, seg = G_real(w, input_is_latent=True, noise=noise)     # (b, 3, H, W)
            out.append(image.clamp(-1, 1))
            masks.append(seg.argmax(1).to(torch.uint8))                   # (b, H, W)
    if with_masks:
        return torch.cat(out), torch.cat(masks)
    return torch.cat(out)


__all__ = ["generate_real"]
