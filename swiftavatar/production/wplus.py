"""W+ codes and the frozen generators that read them: shared by inversion (Eq. 4-5), the start
codes (w_mean, w~_mean), Eq. 6 and augmentation (Eq. 7). Pure torch."""
from __future__ import annotations

from contextlib import contextmanager

import torch

from swiftavatar.models.generator import SemanticGenerator


@contextmanager
def frozen(G: torch.nn.Module):
    """G in eval mode with requires_grad off for the duration; both restored afterwards."""
    flags = [(p, p.requires_grad) for p in G.parameters()]
    was_training = G.training
    try:
        G.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield G
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        G.train(was_training)


def as_wplus(G: SemanticGenerator, w: torch.Tensor, n: int) -> torch.Tensor:
    """(D,), (1|n, D) or (1|n, n_latent, D) -> (n, n_latent, D) (a new tensor)."""
    R, D = G.n_latent, G.config.style_dim
    if w.ndim == 1:
        w = w[None]
    if w.ndim == 2:
        w = w[:, None].expand(-1, R, -1)
    if w.ndim != 3 or w.shape[1:] != (R, D) or w.shape[0] not in (1, n):
        raise ValueError(f"latent must be (D,), (1|N, D) or (1|N, {R}, {D}) with N={n}, D={D}; "
                         f"got {tuple(w.shape)}")
    return w.expand(n, -1, -1).clone()


def generator_device(G: torch.nn.Module, device: torch.device | str | None = None
                     ) -> torch.device:
    """G's device; raise if `device` names another ("cuda" means the current CUDA device)."""
    own = next(G.parameters()).device
    if device is not None:
        want = torch.device(device)
        if want.type == "cuda" and want.index is None:
            want = torch.device("cuda", torch.cuda.current_device())
        if want != own:
            raise ValueError(f"G lives on {own} but device={device}: move G first "
                             "(G.to(device))")
    return own


__all__ = ["as_wplus", "frozen", "generator_device"]
