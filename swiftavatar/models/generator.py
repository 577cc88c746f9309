"""SemanticStyleGAN generator (paper section 3.1: the dual-domain generators G_real, G_avatar).

Layout of the latent codes (official SemanticStyleGAN layout):

* z (N, D) -> mapping network -> w (N, D).
* W+ (N, n_latent, D), n_latent = base_layers + 2K: rows 0..base_layers-1 are the shared base
  (coarse) codes; class k owns a shape code at row base_layers + 2k and a texture code at row
  base_layers + 2k + 1 (with the defaults: 2 + 2*13 = 28 rows, shape 2+2k, texture 3+2k).
* Expanded latents (N, K, L, D): the code each local-generator layer receives. For a class
  k > 0 with L=10 layers, base_layers=2, depth_layers=6: layers 0-1 take the base codes 0-1,
  layers 2-5 the shape code, layers 6-9 the texture code; the pseudo-depth is read after layer
  5 (the last shape layer) and the feature after layer 9. The background (k = 0) has no depth
  (it is fixed to 0) and uses no base code: layers 0-5 take its shape code, 6-9 its texture code.
  `layer_code_index` holds this table.

The K local generators run as stacked parameters (one batched matmul per layer, no loop over
classes). Fusion: mask = softmax over the K depths; fused feature = mask-weighted sum of the part
features (transparent classes keep their own weight and do not occlude). The render net takes
no style; it returns the RGB image and 13-channel segmentation maps (the seg map lives on the
official [-1, 1] one-hot scale: argmax is the class, real masks are one_hot * 2 - 1).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from swiftavatar.models.generator_config import (
    NOISE_MODES, GeneratorConfig, GeneratorOutput, official_width)
from swiftavatar.models.layers import (
    SQRT2, EqualLinear, FourierEmbedding, PixelNorm, StaticModConv2d, ToImage, grid_coords)

class MappingNetwork(nn.Module):
    """z (N, D) -> w (N, D): PixelNorm then n_mlp equalised linear layers (lr x lr_mul)."""

    def __init__(self, style_dim: int, n_mlp: int, lr_mul: float):
        super().__init__()
        self.norm = PixelNorm()
        self.layers = nn.ModuleList(EqualLinear(style_dim, style_dim, lr_mul=lr_mul, activate=True)
                                    for _ in range(n_mlp))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm(z)
        for layer in self.layers:
            x = layer(x)
        return x


class LocalGenerators(nn.Module):
    """K local generators with stacked parameters: Fourier grid -> L modulated 1x1 convs.

    Parameter shapes (K classes, L layers, C channels, D style dim, F feature channels):
    weight (L, K, C_out, C_in); mod_weight (L, K, C_in, D); mod_bias, act_bias (L, K, C);
    feat_weight (K, F, C), feat_mod (K, C), feat_bias (K, F); depth_* for classes 1..K-1.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        K, L, C, D, Fc = (cfg.num_classes, cfg.local_layers, cfg.local_channels, cfg.style_dim,
                          cfg.feature_channels)
        self.cfg = cfg
        self.pos_embed = FourierEmbedding(C, cfg.n_freqs)
        self.weight = nn.Parameter(torch.randn(L, K, C, C))
        self.mod_weight = nn.Parameter(torch.randn(L, K, C, D))
        self.mod_bias = nn.Parameter(torch.ones(L, K, C))
        self.act_bias = nn.Parameter(torch.zeros(L, K, C))
        self.feat_weight = nn.Parameter(torch.randn(K, Fc, C))
        self.feat_mod = nn.Parameter(torch.ones(K, C))
        self.feat_bias = nn.Parameter(torch.zeros(K, Fc))
        self.depth_weight = nn.Parameter(torch.randn(K - 1, C))
        self.depth_mod = nn.Parameter(torch.ones(K - 1, C))
        self.depth_bias = nn.Parameter(torch.zeros(K - 1))
        self.scale_c, self.scale_d = 1.0 / math.sqrt(C), 1.0 / math.sqrt(D)

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (N, K, L, D) -> hidden (N, K, C, P), depths (N, K, P) with P = grid**2.

        Modulation and demodulation are folded into per-sample weights (N, K, C, C), which are
        much smaller than the activations; the sqrt(2) gain of each leaky ReLU is folded into
        the next layer's (or head's) weights, and `hidden` is returned without that gain.
        """
        cfg = self.cfg
        N, K, L, _ = latents.shape
        P = cfg.grid * cfg.grid
        x = self.pos_embed(grid_coords(cfg.grid, latents.device))            # (C, P), shared
        depths = latents.new_zeros(N, K, P)
        for j in range(L):
            # style s (N, K, C_in): equalised linear of the layer's code, bias init 1
            s = torch.einsum("nkd,kcd->nkc", latents[:, :, j], self.mod_weight[j]) * self.scale_d
            s = s + self.mod_bias[j]
            w = self.weight[j] * self.scale_c * s.unsqueeze(2)                # (N, K, O, I)
            w = w * torch.rsqrt(w.square().sum(-1, keepdim=True) + 1e-8)      # demodulate
            if j > 0:
                w = w * SQRT2                                                 # previous gain
            bias = self.act_bias[j].unsqueeze(-1)                             # (K, O, 1)
            if j == 0:
                x = torch.matmul(w, x) + bias                                 # (N, K, O, P)
            else:
                C = x.shape[2]
                x = torch.baddbmm(bias.repeat(N, 1, 1), w.reshape(N * K, C, C),
                                  x.reshape(N * K, C, P)).reshape(N, K, C, P)
            x = F.leaky_relu(x, 0.2)                                          # gain folded
            if j == cfg.depth_layers - 1:
                a = self.depth_weight * self.depth_mod * (self.scale_c * SQRT2)  # (K-1, C)
                d = torch.einsum("kc,nkcp->nkp", a, x[:, 1:]) + self.depth_bias[:, None]
                depths = torch.cat([depths[:, :1], d], dim=1)                 # (N, K, P)
                if cfg.detach_texture and j < L - 1:
                    x = x.detach()
        return x, depths

    def fuse(self, hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_k w_k * to_feat_k(h_k): hidden (N, K, C, P), weights (N, K, P) -> (N, F, P).

        to_feat is linear, so the weights are applied to the C-channel hidden state first and
        one (F, K*C) x (K*C, P) product gives the fused feature without K full feature maps.
        """
        N, K, C, P = hidden.shape
        a = self.feat_weight * (self.feat_mod * (self.scale_c * SQRT2)).unsqueeze(1)  # (K, F, C)
        a = a.permute(1, 0, 2).reshape(-1, K * C)                             # (F, K*C)
        wh = (hidden * weights.unsqueeze(2)).reshape(N, K * C, P)
        return torch.matmul(a, wh) + torch.einsum("kf,nkp->nfp", self.feat_bias, weights)


class RenderNet(nn.Module):
    """Fused feature (N, F, G, G) -> RGB (N, 3, S, S) and seg (N, K, S, S); no style input.

    Pools the feature to min_feat_size, then per stage: 2x upsampling 3x3 conv, 3x3 conv (each
    with noise injection), and RGB / seg skip heads summed across scales. At the stage whose
    input is G x G the full-resolution fused feature is concatenated back in; with
    residual_refine the coarse mask (on the [-1, 1] scale) is added to the seg at G x G.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.to_segs = nn.ModuleList()
        in_ch = cfg.feature_channels
        for i, (res, out_ch) in enumerate(zip(cfg.stage_sizes, cfg.render_widths)):
            if res // 2 == cfg.grid:
                in_ch += cfg.feature_channels
            self.convs.append(StaticModConv2d(in_ch, out_ch, 3, upsample=True))
            self.convs.append(StaticModConv2d(out_ch, out_ch, 3))
            self.register_buffer(f"noise_{2 * i}", torch.randn(1, 1, res, res))
            self.register_buffer(f"noise_{2 * i + 1}", torch.randn(1, 1, res, res))
            self.to_rgbs.append(ToImage(out_ch, 3))
            self.to_segs.append(ToImage(out_ch, cfg.num_classes))
            in_ch = out_ch

    def forward(self, feat: torch.Tensor, seg_skip: torch.Tensor | None,
                noise: str = "random") -> tuple[torch.Tensor, torch.Tensor]:
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        cfg = self.cfg
        x = F.adaptive_avg_pool2d(feat, cfg.min_feat_size)                    # (N, F, m, m)
        rgb = seg = None
        for i in range(cfg.n_stages):
            if x.shape[-1] == cfg.grid:
                x = torch.cat([x, feat], dim=1)
            res = cfg.stage_sizes[i]
            for j in (2 * i, 2 * i + 1):
                nz = None
                if noise == "const":
                    nz = getattr(self, f"noise_{j}")                           # (1, 1, res, res)
                elif noise == "random":
                    nz = x.new_empty(x.shape[0], 1, res, res).normal_()        # (N, 1, res, res)
                x = self.convs[j](x, nz)                                       # (N, W_i, res, res)
            rgb = self.to_rgbs[i](x, rgb)
            seg = self.to_segs[i](x, seg)
            if seg_skip is not None and seg.shape[-1] == seg_skip.shape[-1]:
                seg = seg + seg_skip
        return rgb, seg


class SemanticGenerator(nn.Module):
    """SemanticStyleGAN: mapping network, K local generators, fusion, render net."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = cfg = config or GeneratorConfig()
        self.style = MappingNetwork(cfg.style_dim, cfg.n_mlp, cfg.lr_mlp)
        self.local = LocalGenerators(cfg)
        self.render = RenderNet(cfg)
        self.register_buffer("layer_code_index", self.layer_code_table(cfg), persistent=False)
        opaque = torch.ones(cfg.num_classes)
        opaque[list(cfg.transparent_classes)] = 0.0
        self.register_buffer("opaque", opaque, persistent=False)              # (K,)

    @staticmethod
    def layer_code_table(cfg: GeneratorConfig) -> torch.Tensor:
        """(K, L) long: the W+ row each local layer reads (see the module docstring)."""
        rows = []
        for k in range(cfg.num_classes):
            shape, tex = cfg.base_layers + 2 * k, cfg.base_layers + 2 * k + 1
            if k == 0:
                row = [shape] * cfg.depth_layers
            else:
                row = list(range(cfg.base_layers)) + [shape] * (cfg.depth_layers - cfg.base_layers)
            rows.append(row + [tex] * (cfg.local_layers - cfg.depth_layers))
        return torch.tensor(rows, dtype=torch.long)

    # ---- latent-space helpers -------------------------------------------------------------
    @property
    def n_latent(self) -> int:
        return self.config.n_latent

    def shape_index(self, k: int) -> int:
        """W+ row of class k's shape code."""
        self._check_class(k)
        return self.config.base_layers + 2 * k

    def texture_index(self, k: int) -> int:
        """W+ row of class k's texture code."""
        self._check_class(k)
        return self.config.base_layers + 2 * k + 1

    def class_code_indices(self, k: int) -> tuple[int, int]:
        """(shape row, texture row) of class k in W+."""
        return self.shape_index(k), self.texture_index(k)

    def _check_class(self, k: int) -> None:
        if not 0 <= k < self.config.num_classes:
            raise IndexError(f"class {k} outside 0..{self.config.num_classes - 1}")

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> w (N, D)."""
        if z.ndim != 2 or z.shape[1] != self.config.style_dim:
            raise ValueError(f"z must be (N, {self.config.style_dim}), got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 10_000, device: torch.device | str | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of w over n random z -> (1, D) (the paper's w_mean uses 10^4 samples)."""
        device = device if device is not None else self.local.weight.device
        z = torch.randn(n, self.config.style_dim, device=device, generator=generator)
        return self.style(z).mean(dim=0, keepdim=True)

    def to_wplus(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, D) -> W+ (N, n_latent, D) with every row equal to w."""
        return w.unsqueeze(1).expand(-1, self.n_latent, -1)

    def mix_styles(self, w1: torch.Tensor, w2: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Style mixing for training: base codes from w1; per sample and class, (shape, texture)
        is (w1, w1), (w1, w2) or (w2, w2) with equal odds. w1, w2 (N, D) -> W+ (N, n_latent, D)."""
        N, K = w1.shape[0], self.config.num_classes
        choice = torch.randint(0, 3, (N, K), generator=generator).to(w1.device)
        shape = torch.where((choice == 2)[..., None], w2[:, None], w1[:, None])  # (N, K, D)
        tex = torch.where((choice >= 1)[..., None], w2[:, None], w1[:, None])
        pairs = torch.stack([shape, tex], dim=2).reshape(N, 2 * K, -1)
        return torch.cat([w1[:, None].expand(-1, self.config.base_layers, -1), pairs], dim=1)

    def expand_latents(self, wplus: torch.Tensor) -> torch.Tensor:
        """W+ (N, n_latent, D) -> per-layer codes (N, K, L, D)."""
        return wplus[:, self.layer_code_index]

    @staticmethod
    def truncate(w: torch.Tensor, truncation: float, truncation_latent: torch.Tensor | None):
        """w_mean + psi * (w - w_mean), for any (N, ..., D) w and (1, D) w_mean."""
        if truncation >= 1.0:
            return w
        if truncation_latent is None:
            raise ValueError("truncation < 1 needs truncation_latent (use mean_latent())")
        mean = truncation_latent.reshape(1, *([1] * (w.ndim - 2)), -1)
        return mean + truncation * (w - mean)

    # ---- synthesis ------------------------------------------------------------------------
    def forward(self, styles: torch.Tensor | Sequence[torch.Tensor], *,
                input_is_latent: bool = False, truncation: float = 1.0,
                truncation_latent: torch.Tensor | None = None, noise: str = "random",
                return_all: bool = False, mixing_generator: torch.Generator | None = None):
        """Synthesise images and segmentation.

        styles: z (N, D) or [z] or [z1, z2] (style mixing) when input_is_latent is False;
        otherwise w (N, D) (broadcast to W+), W+ (N, n_latent, D), expanded (N, K, L, D),
        or [w1, w2]. noise: "random" (training), "const" (fixed buffers), "none".
        Returns (image (N, 3, S, S), seg (N, K, S, S)), or a GeneratorOutput if return_all.
        """
        cfg = self.config
        lat = list(styles) if isinstance(styles, (list, tuple)) else [styles]
        if not 1 <= len(lat) <= 2:
            raise ValueError(f"pass one style tensor or two for mixing, got {len(lat)}")
        if not input_is_latent:
            lat = [self.mapping(z) for z in lat]
        lat = [self.truncate(w, truncation, truncation_latent) for w in lat]
        if len(lat) == 2:
            if lat[0].shape != lat[1].shape or lat[0].ndim != 2:
                raise ValueError("style mixing needs two (N, D) tensors of equal shape")
            latents = self.expand_latents(self.mix_styles(lat[0], lat[1], mixing_generator))
        else:
            latents = self._as_expanded(lat[0])
        N, K, G = latents.shape[0], cfg.num_classes, cfg.grid

        hidden, depths = self.local(latents)                     # (N, K, C, P), (N, K, P)
        mask = torch.softmax(depths, dim=1)                      # (N, K, P)
        weights = mask
        if cfg.transparent_classes:
            op = self.opaque[None, :, None]
            normal = mask * op
            weights = normal / (normal.sum(1, keepdim=True) + 1e-8) + mask * (1.0 - op)
        feat = self.local.fuse(hidden, weights).reshape(N, cfg.feature_channels, G, G)
        mask = mask.reshape(N, K, G, G)
        skip = 2.0 * mask - 1.0 if cfg.residual_refine else None
        image, seg = self.render(feat, skip, noise=noise)
        assert image.shape == (N, 3, cfg.size, cfg.size), image.shape
        assert seg.shape == (N, K, cfg.size, cfg.size), seg.shape
        if return_all:
            return GeneratorOutput(image, seg, mask, depths.reshape(N, K, G, G), feat, latents)
        return image, seg

    def _as_expanded(self, w: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        D, K, L = cfg.style_dim, cfg.num_classes, cfg.local_layers
        if w.shape[-1] != D:
            raise ValueError(f"latent last dim must be style_dim={D}, got {tuple(w.shape)}")
        if w.ndim == 2:
            return self.expand_latents(self.to_wplus(w))
        if w.ndim == 3 and w.shape[1] == cfg.n_latent:
            return self.expand_latents(w)
        if w.ndim == 4 and w.shape[1:3] == (K, L):
            return w
        raise ValueError(f"latent must be (N, {D}), W+ (N, {cfg.n_latent}, {D}) or expanded "
                         f"(N, {K}, {L}, {D}); got {tuple(w.shape)}")


__all__ = ["GeneratorConfig", "GeneratorOutput", "MappingNetwork", "LocalGenerators",
           "RenderNet", "SemanticGenerator", "official_width"]
