"""The estimator's loss (paper Eq. 8) and its parts, as small free functions.

    L = lambda_c * |p_c_hat - p_c|_1 + lambda_d * sum_j SCE(logits_j, y_j)        (Eq. 8)

Continuous targets and predictions are in the normalised [0, 1] space (one unit = a
parameter's whole range); the L1 term is the mean over rows and parameters. SCE is the
symmetric cross-entropy of Wang et al. (ICCV 2019): alpha * CE + beta * RCE, where the reverse
cross-entropy RCE = -sum_k p_k log q_k takes the one-hot label q with log(0) clamped to A = -4,
so RCE = -A * (1 - p_y). Defaults: lambda_c 1, lambda_d 10 (paper section 4); alpha 0.1,
beta 1.0 (the SCE paper's CIFAR-10 setting: our discrete parameters have 3-16 options, close to
its 10 classes).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

LAMBDA_C = 1.0
LAMBDA_D = 10.0
SCE_ALPHA = 0.1
SCE_BETA = 1.0
RCE_LOG_ZERO = -4.0  # A: the value log(0) is clamped to in RCE


def continuous_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over (N, n_c); 0 when there are no continuous parameters."""
    assert pred.shape == target.shape, (pred.shape, target.shape)
    if pred.numel() == 0:
        return pred.new_zeros(())
    return (pred - target).abs().mean()


def reverse_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                          log_zero: float = RCE_LOG_ZERO) -> torch.Tensor:
    """Mean over the batch of -sum_k p_k log q_k with q one-hot(target), log 0 := log_zero.
    logits (N, K), target (N,) int64. Equals -log_zero * (1 - p_target)."""
    assert logits.ndim == 2 and target.shape == (logits.shape[0],), (logits.shape, target.shape)
    p = F.softmax(logits, dim=1)                                         # (N, K)
    log_q = torch.full_like(p, float(log_zero))
    log_q.scatter_(1, target[:, None], 0.0)                              # log 1 = 0
    return -(p * log_q).sum(dim=1).mean()


def symmetric_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                            alpha: float = SCE_ALPHA, beta: float = SCE_BETA,
                            log_zero: float = RCE_LOG_ZERO) -> torch.Tensor:
    """SCE = alpha * CE + beta * RCE (Wang et al. 2019), means over the batch."""
    ce = F.cross_entropy(logits, target)
    return alpha * ce + beta * reverse_cross_entropy(logits, target, log_zero)


def discrete_sce(logits: Sequence[torch.Tensor], targets: torch.Tensor,
                 alpha: float = SCE_ALPHA, beta: float = SCE_BETA,
                 log_zero: float = RCE_LOG_ZERO) -> torch.Tensor:
    """sum_j SCE(logits_j, targets[:, j]) over the discrete heads; targets (N, n_d) int64."""
    assert targets.ndim == 2 and targets.shape[1] == len(logits), (targets.shape, len(logits))
    total = targets.new_zeros((), dtype=torch.float32)
    for j, lg in enumerate(logits):
        total = total + symmetric_cross_entropy(lg, targets[:, j], alpha, beta, log_zero)
    return total


def estimator_loss(outputs: dict, cont_target: torch.Tensor, disc_target: torch.Tensor, *,
                   lambda_c: float = LAMBDA_C, lambda_d: float = LAMBDA_D,
                   alpha: float = SCE_ALPHA, beta: float = SCE_BETA,
                   log_zero: float = RCE_LOG_ZERO) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 8 on the model's outputs {"cont": (N, n_c), "logits": [(N, K_j)]} against targets
    (N, n_c) in [0, 1] and (N, n_d) int64. Returns (loss, detached parts: loss_c, loss_d)."""
    l_c = continuous_l1(outputs["cont"], cont_target)
    l_d = discrete_sce(outputs["logits"], disc_target, alpha, beta, log_zero)
    loss = lambda_c * l_c + lambda_d * l_d                               # Eq. 8
    return loss, {"loss_c": l_c.detach(), "loss_d": l_d.detach()}


__all__ = ["LAMBDA_C", "LAMBDA_D", "RCE_LOG_ZERO", "SCE_ALPHA", "SCE_BETA", "continuous_l1",
           "discrete_sce", "estimator_loss", "reverse_cross_entropy", "symmetric_cross_entropy"]
