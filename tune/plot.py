"""The LPIPS-by-parameter plot, drawn with PIL: one panel per tuned parameter, one point per
trial at (its value, its last validation LPIPS); filled blue: trained every epoch, hollow
orange: stopped early (ASHA), red ring: the best trial. Log x axis for log-uniform parameters
and for positive values spanning a factor of 10 or more."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL_W, PANEL_H = 380, 300
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 34, 46
BLUE, ORANGE, RED, GREY, BLACK = (40, 90, 200), (230, 130, 20), (210, 30, 30), (200, 200, 200), \
    (0, 0, 0)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _panel(name: str, xs: list[float], ys: list[float], kinds: list[str], log: bool,
           categorical: bool, y_lo: float, y_hi: float, font: Any) -> Image.Image:
    img = Image.new("RGB", (PANEL_W, PANEL_H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    x0, x1, y0, y1 = LEFT, PANEL_W - RIGHT, TOP, PANEL_H - BOTTOM      # plot box (pixels)
    d.rectangle([x0, y0, x1, y1], outline=BLACK)
    d.text((x0, 8), name, fill=BLACK, font=font)
    tx = [math.log10(x) for x in xs] if log else list(xs)
    lo, hi = min(tx), max(tx)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def px(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    def py(v: float) -> float:
        return y1 - (v - y_lo) / (y_hi - y_lo) * (y1 - y0)

    if categorical:                                   # grid / choice: tick every value
        xt = [(math.log10(v) if log else v, v) for v in sorted(set(xs))]
    elif log:                                         # 1-2-5 ticks per decade
        xt = [(math.log10(v), v) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1)
              for v in (10.0 ** e, 2 * 10.0 ** e, 5 * 10.0 ** e) if lo <= math.log10(v) <= hi]
    else:
        xt = [(t, t) for t in _ticks(lo, hi)]
    for t, label in xt:
        d.line([px(t), y1, px(t), y1 + 4], fill=BLACK)
        d.text((px(t) - 12, y1 + 7), _fmt(label), fill=BLACK, font=font)
    for t in _ticks(y_lo, y_hi, 5):
        d.line([x0 - 4, py(t), x1, py(t)], fill=GREY)
        d.text((4, py(t) - 6), f"{t:.4f}", fill=BLACK, font=font)
    d.rectangle([x0, y0, x1, y1], outline=BLACK)
    d.text((x0 + (x1 - x0) // 2 - 30, PANEL_H - 18), name.split(".")[-1] + (" (log)" if log
                                                                             else ""),
           fill=BLACK, font=font)
    for t, y, kind in sorted(zip(tx, ys, kinds), key=lambda p: p[2] == "best"):
        cx, cy, r = px(t), py(y), 5
        if kind == "stopped":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ORANGE, width=2)
        else:
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=BLUE)
        if kind == "best":
            d.ellipse([cx - r - 4, cy - r - 4, cx + r + 4, cy + r + 4], outline=RED, width=2)
    return img


def lpips_by_param(rows: Sequence[dict[str, Any]], params: Sequence[Any], title: str
                   ) -> np.ndarray:
    """(H, W, 3) uint8 plot. rows: tune.results.trial_rows() entries ("values", "val_lpips",
    "status", "best"); params: the sweep's Params (the tuned ones get a panel)."""
    font = ImageFont.load_default()
    done = [r for r in rows if r.get("val_lpips") is not None]
    if not done:
        raise ValueError("no trial reported val_lpips: nothing to plot")
    shown = [p for p in params if p.kind != "fixed"] or list(params)
    ys = [float(r["val_lpips"]) for r in done]
    y_lo, y_hi = min(ys), max(ys)
    pad = max(0.1 * (y_hi - y_lo), 1e-3)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    kinds = ["best" if r.get("best") else ("stopped" if r["status"].startswith("stopped")
                                            else "complete") for r in done]
    panels = []
    for p in shown:
        xs = [float(r["values"][p.name]) for r in done]
        log = p.log_scale or (min(xs) > 0 and max(xs) / min(xs) >= 10)
        panels.append(_panel(p.name, xs, ys, kinds, log, p.kind in ("grid", "choice", "fixed"),
                             y_lo, y_hi, font))
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    head = 40
    sheet = Image.new("RGB", (ncol * PANEL_W, head + nrow * PANEL_H), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    d.text((10, 6), title, fill=BLACK, font=font)
    x = 10
    for color, label, hollow in ((BLUE, "all epochs", False), (ORANGE, "stopped early", True),
                                 (RED, "best", True)):
        box = [x, 24, x + 10, 34]
        d.ellipse(box, outline=color, width=2) if hollow else d.ellipse(box, fill=color)
        d.text((x + 14, 22), label, fill=BLACK, font=font)
        x += 120
    for i, panel in enumerate(panels):
        r, c = divmod(i, ncol)
        sheet.paste(panel, (c * PANEL_W, head + r * PANEL_H))
    out = np.asarray(sheet)
    assert out.ndim == 3 and out.shape[2] == 3, out.shape
    return out


__all__ = ["lpips_by_param"]
