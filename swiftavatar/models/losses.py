"""GAN losses for the dual-domain generators (paper section 3.1).

Eq. 1: L_StyleGAN2 = L_adv + lambda_R1 * L_R1 + lambda_path * L_path, with the non-saturating
logistic adversarial loss. The training loop applies the regularisers lazily, as StyleGAN2
and SemanticStyleGAN do: R1 every 16 D steps with weight gamma/2 * 16 (gamma = 10 for images,
1000 for masks), path length every 4 G steps with weight 0.5 * 4, on half the batch, with the
expanded latents (N, K, L, D) as the input the gradient is taken against.
Eq. 2: L_color = sum_s || m^s(G_real(z)) - m^s(G_avatar(z)) ||^2, s in {hair, skin}.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import autograd

from swiftavatar.semantics import HAIR, SKIN

R1_GAMMA_IMAGE = 10.0
R1_GAMMA_SEG = 1000.0
R1_EVERY = 16
PATH_WEIGHT = 0.5
PATH_EVERY = 4


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Eq. 1, L_adv for D: softplus(-D(x)) + softplus(D(G(z))), each averaged."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Eq. 1, L_adv for G: softplus(-D(G(z))) averaged (non-saturating)."""
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor,
               real_input: torch.Tensor | Sequence[torch.Tensor]):
    """Eq. 1, L_R1: E ||grad_x D(x)||^2 on real data (sum over pixels, mean over the batch).

    real_input: a tensor, or several (image, seg) for a two-branch D, each created with
    requires_grad=True before D ran. Returns one penalty per input (a tensor, or a tuple).
    An input D does not depend on gives 0. Unweighted: multiply by gamma / 2 (* R1_EVERY).
    """
    inputs = [real_input] if isinstance(real_input, torch.Tensor) else list(real_input)
    for x in inputs:
        if not x.requires_grad:
            raise ValueError("r1_penalty: call real_input.requires_grad_(True) before running D")
    grads = autograd.grad(real_pred.sum(), inputs, create_graph=True, allow_unused=True)
    out = []
    for x, g in zip(inputs, grads):
        if g is None:
            out.append(x.new_zeros(()))
        else:
            out.append(g.square().reshape(g.shape[0], -1).sum(1).mean())
    return out[0] if isinstance(real_input, torch.Tensor) else tuple(out)


def path_length_penalty(fake_img: torch.Tensor, latents: torch.Tensor,
                        mean_path_length: float | torch.Tensor, decay: float = 0.01):
    """Eq. 1, L_path: (||J_w^T y|| - a)^2 with y ~ N(0, I) / sqrt(H W) and a a running mean.

    fake_img (N, 3, H, W) made from `latents` (N, ..., D), which requires grad.
    Returns (penalty scalar, new running mean (detached), path lengths (N,)).
    """
    if not latents.requires_grad:
        raise ValueError("path_length_penalty: latents must require grad and feed fake_img")
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = autograd.grad((fake_img * noise).sum(), latents, create_graph=True)
    lengths = grad.square().sum(-1).reshape(grad.shape[0], -1).mean(1).sqrt()   # (N,)
    mean = torch.as_tensor(mean_path_length, dtype=lengths.dtype, device=lengths.device)
    new_mean = mean + decay * (lengths.mean() - mean)
    penalty = (lengths - new_mean).square().mean()
    return penalty, new_mean.detach(), lengths


def region_mean_colors(img: torch.Tensor, seg: torch.Tensor, classes: Sequence[int],
                       temperature: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft mean colour per class region.

    img (N, 3, H, W); seg (N, K, h, w) generator seg maps (resized to H x W if needed). The soft
    mask is softmax(seg / temperature): seg lives on the [-1, 1] one-hot scale, so a plain
    softmax would blur every region into its neighbours. Returns colours (N, S, 3) and area
    fractions (N, S) for the S classes.
    """
    if img.ndim != 4 or img.shape[1] != 3 or seg.ndim != 4 or seg.shape[0] != img.shape[0]:
        raise ValueError(f"need img (N, 3, H, W) and seg (N, K, h, w), got {tuple(img.shape)} "
                         f"and {tuple(seg.shape)}")
    if seg.shape[-2:] != img.shape[-2:]:
        seg = F.interpolate(seg, size=img.shape[-2:], mode="bilinear", align_corners=False)
    masks = torch.softmax(seg / temperature, dim=1)[:, list(classes)]           # (N, S, H, W)
    mass = masks.sum(dim=(2, 3))                                                 # (N, S)
    colors = torch.einsum("nshw,nchw->nsc", masks, img) / mass.clamp_min(1e-6)[..., None]
    return colors, mass / (img.shape[2] * img.shape[3])


def color_matching_loss(img_a: torch.Tensor, seg_a: torch.Tensor, img_b: torch.Tensor,
                        seg_b: torch.Tensor, classes: Sequence[int] = (SKIN, HAIR),
                        temperature: float = 0.1, min_area: float = 1e-3) -> torch.Tensor:
    """Eq. 2: sum over classes of ||mean colour in a - mean colour in b||^2, mean over the batch.

    Each image's regions come from its own generator's seg output, so the loss is
    differentiable in both images and masks. A class covering less than `min_area` of either
    image (absent region) contributes 0 for that sample. Detach the G_real side yourself.
    """
    if img_a.shape != img_b.shape:
        raise ValueError(f"images differ in shape: {tuple(img_a.shape)} vs {tuple(img_b.shape)}")
    col_a, area_a = region_mean_colors(img_a, seg_a, classes, temperature)      # (N, S, 3)
    col_b, area_b = region_mean_colors(img_b, seg_b, classes, temperature)
    present = ((area_a > min_area) & (area_b > min_area)).to(img_a.dtype)        # (N, S)
    per_class = (col_a - col_b).square().sum(-1) * present                      # (N, S)
    return per_class.sum(1).mean()
