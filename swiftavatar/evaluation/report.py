"""Evaluation reports: results JSON, a self-contained HTML page with the ablation table (paper
Table 3: Baseline, + domain adaptation, + semantic augmentation), and the Figure-6 sheet
(input face | each method's avatar | the designer's avatar)."""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from swiftavatar import atomic
from swiftavatar.evaluation.metrics import EvalResult
from swiftavatar.evaluation.robustness import robustness_html, robustness_rows
from swiftavatar.evaluation.table1 import table1_html
from swiftavatar.viz import grid, save_png

# The paper's Table 3 (LPIPS to designer avatars, lower is better), for context only: other
# engines, other faces, another LPIPS trunk.
PAPER_TABLE3 = {"Baseline": {"TikTok": 0.5033, "Alter": 0.3962},
                "+ domain adaptation": {"TikTok": 0.3401, "Alter": 0.3123},
                "+ semantic augmentation": {"TikTok": 0.3110, "Alter": 0.2405}}
HEADER_H = 14  # pixels of the column-title strip above a sheet


@dataclass
class ReportPaths:
    json: Path
    html: Path
    figures: dict[str, Path] = field(default_factory=dict)


def table_rows(results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    """One ablation-table row per result (method, engine, LPIPS, accuracy, MAE, ...)."""
    return [{"method": r.method, "engine": r.engine, "eval_set": r.eval_set, "n": r.n,
             "size": r.size, "lpips": r.lpips_mean, "lpips_std": r.lpips_std,
             "lpips_sem": r.lpips_sem, "attribute_accuracy": dict(r.attribute_accuracy),
             "discrete_accuracy": r.discrete_accuracy_mean,
             "continuous_mae": r.continuous_mae_mean,
             "lpips_backbone": r.lpips_backbone,
             "copied_from_designer": list(r.copied_from_designer)} for r in results]


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a temp file beside `path`, then rename it into place."""
    atomic.write_text(path, text)
    return Path(path)


def write_results_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Strict JSON (no NaN), written atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def _resize(images: np.ndarray, tile: int) -> np.ndarray:
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got {imgs.shape} {imgs.dtype}")
    if imgs.shape[1:3] == (tile, tile):
        return imgs
    return np.stack([np.asarray(Image.fromarray(im).resize((tile, tile), Image.LANCZOS))
                     for im in imgs])


def figure6_sheet(faces: np.ndarray, method_renders: Mapping[str, np.ndarray],
                  designer_renders: np.ndarray | None, *, tile: int = 128, n: int | None = None,
                  pad: int = 2) -> np.ndarray:
    """The paper's Figure 6 as one image: a row per face with columns input | one avatar per
    method (in `method_renders` order) | designer (left out when None: an engine without a
    designer). Inputs (N, H, W, 3) uint8 of any sides; tiles are resized to `tile`. Returns
    (HEADER_H + rows*(tile+pad)+pad, cols*(tile+pad)+pad, 3) uint8 with the column titles on
    a strip above."""
    n = len(faces) if n is None else min(int(n), len(faces))
    cols = [("input", faces)] + list(method_renders.items())
    if designer_renders is not None:
        cols.append(("designer", designer_renders))
    for name, imgs in cols:
        if len(imgs) < n:
            raise ValueError(f"figure6_sheet: {name!r} has {len(imgs)} images, need {n}")
    per_col = [_resize(np.asarray(imgs)[:n], tile) for _, imgs in cols]   # each (n, T, T, 3)
    tiles = np.stack(per_col, axis=1).reshape(n * len(cols), tile, tile, 3)
    body = grid(tiles, ncols=len(cols), pad=pad)
    head = Image.new("RGB", (body.shape[1], HEADER_H), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for c, (name, _) in enumerate(cols):
        draw.text((pad + c * (tile + pad) + 2, 1), name[: max(1, tile // 6)], fill=(0, 0, 0))
    return np.concatenate([np.asarray(head), body], axis=0)


def _png_b64(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _table_html(rows: list[dict[str, Any]]) -> str:
    out = []
    for engine in dict.fromkeys(r["engine"] for r in rows):
        sub = [r for r in rows if r["engine"] == engine]
        attrs = list(dict.fromkeys(a for r in sub for a in r["attribute_accuracy"]))
        copied = sorted({p for r in sub for p in r["copied_from_designer"]})
        note = (f"<p>Taken from the designer's vector before rendering (not scored by LPIPS): "
                f"{html.escape(', '.join(copied))}.</p>\n") if copied else ""
        head = "".join(f"<th>{html.escape(a)} &uarr;</th>" for a in attrs)
        out.append(f"<h2>Engine <code>{html.escape(engine)}</code></h2>\n{note}<table>\n"
                   "<tr><th>method</th><th>faces</th><th>LPIPS &darr; (&plusmn; s.e.)</th>"
                   f"{head}<th>discrete acc &uarr;</th><th>continuous MAE &darr;</th>"
                   "<th>n</th></tr>")
        for r in sub:
            cells = "".join(f"<td>{_fmt(r['attribute_accuracy'].get(a), 2)}</td>" for a in attrs)
            out.append(f"<tr><td>{html.escape(r['method'])}</td>"
                       f"<td>{html.escape(r['eval_set'])}</td>"
                       f"<td>{_fmt(r['lpips'])} &plusmn; {_fmt(r['lpips_sem'], 3)}</td>{cells}"
                       f"<td>{_fmt(r['discrete_accuracy'])}</td>"
                       f"<td>{_fmt(r['continuous_mae'])}</td><td>{r['n']}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def _correspondence_html(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Per engine: the paired data's correspondence report (see correspondence.py)."""
    from swiftavatar.evaluation.correspondence import CorrespondenceReport

    out = []
    for engine, d in reports.items():
        rep = CorrespondenceReport.from_dict(d["report"])
        out.append(f"<h2>Correspondence of the paired data, <code>{html.escape(engine)}</code>"
                   f"</h2><p>{rep.n} inverted pairs; avatar regions from "
                   f"{html.escape(str(d.get('avatar_masks')))}, realistic regions from "
                   f"G_real's segmentation.</p><pre>{html.escape(rep.table())}</pre>")
    return "".join(out)


def _check_photos_html(checks: Mapping[str, Mapping[str, Any]]) -> str:
    """Per engine: the real-photo check set's sheet (embedded) and per-attribute table
    (swiftavatar.checkset.run.check_photos: "files"["sheet"] the PNG, "text" the table)."""
    out = []
    for engine, c in checks.items():
        sheet = base64.b64encode(Path(c["files"]["sheet"]).read_bytes()).decode("ascii")
        missing = (f" No face found in: {html.escape(', '.join(c['missing']))} (counted "
                   f"wrong).") if c.get("missing") else ""
        out.append(f"<h2>Real photos, <code>{html.escape(engine)}</code> (+ semantic "
                   f"augmentation)</h2><p>The shipped check set (public-domain portraits with "
                   f"hand-written records of what a person sees); per attribute, on how many "
                   f"photos the avatar shows it. Faces framed with align "
                   f"{html.escape(str(c.get('align')))}.{missing}</p>"
                   f"<pre>{html.escape(c['text'])}</pre><figure><img alt='check sheet "
                   f"{html.escape(engine)}' src='data:image/png;base64,{sheet}'><figcaption>"
                   f"photo | crop the estimator saw | avatar | record / reading</figcaption>"
                   f"</figure>")
    return "".join(out)


def _paper_html() -> str:
    rows = "".join(f"<tr><td>{html.escape(m)}</td><td>{v['TikTok']:.4f}</td>"
                   f"<td>{v['Alter']:.4f}</td></tr>" for m, v in PAPER_TABLE3.items())
    return ("<h2>For context: the paper's Table 3</h2><p>LPIPS to designer avatars on the "
            "paper's engines and 116 FFHQ photos; not comparable with the numbers above.</p>"
            f"<table><tr><th>method</th><th>TikTok</th><th>Alter</th></tr>{rows}</table>")


def write_report(out_dir: str | Path, results: Sequence[EvalResult], *,
                 title: str = "SwiftAvatar evaluation against designer avatars",
                 eval_set: Mapping[str, Any] | None = None,
                 figures: Mapping[str, np.ndarray] | None = None,
                 notes: Sequence[str] = (),
                 correspondence: Mapping[str, Mapping[str, Any]] | None = None,
                 check_photos: Mapping[str, Mapping[str, Any]] | None = None,
                 table1: Sequence[Mapping[str, Any]] = ()) -> ReportPaths:
    """Write results.json, report.html (self-contained: figures embedded as base64 PNG) and
    each figure as a PNG in `out_dir`. `figures` maps a caption to an (H, W, 3) uint8 image
    (e.g. `figure6_sheet(...)`); result rows keep their given order. `correspondence` maps an
    engine to its dataset card's "correspondence" entry; `check_photos` an engine to its
    real-photo check ("files" with the "sheet" PNG's path, "text" the table, "table" its
    rows, "missing" the photo ids not answered); `table1` the rows of
    swiftavatar.evaluation.table1.table1_rows (Baseline, F2P, F2P v2, SwiftAvatar)."""
    if not results:
        raise ValueError("write_report needs at least one EvalResult")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    robust = robustness_rows(results)
    backbones = sorted({r.lpips_backbone for r in results})
    payload = {"title": title, "eval_set": dict(eval_set) if eval_set else None,
               "lpips": results[0].lpips_info, "lpips_backbones": backbones, "table": rows,
               "results": [r.to_dict() for r in results], "notes": list(notes),
               "correspondence": dict(correspondence or {}), "robustness": robust,
               "table1": [dict(r) for r in table1],
               "check_photos": {e: {k: c[k] for k in ("table", "missing", "files") if k in c}
                                for e, c in (check_photos or {}).items()}}
    json_path = write_results_json(out / "results.json", payload)

    fig_paths: dict[str, Path] = {}
    fig_html = []
    for k, (caption, image) in enumerate((figures or {}).items()):
        fig_paths[caption] = save_png(image, out / f"figure_{k + 1}.png")
        fig_html.append(f"<figure><img alt='{html.escape(caption)}' "
                        f"src='data:image/png;base64,{_png_b64(image)}'>"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    info = results[0].lpips_info
    lp = (f"LPIPS v{html.escape(str(info.get('version', '?')))} "
          f"{html.escape(str(info.get('net', '?')))}, backbone "
          f"<b>{html.escape(', '.join(backbones))}</b>; comparable with published LPIPS: "
          f"{html.escape(str(info.get('comparable_with_published', '?')))}. "
          f"{html.escape(str(info.get('note', '')))}")
    es = "" if not eval_set else ("<p>Evaluation set: " + html.escape(
        ", ".join(f"{k}={v}" for k, v in eval_set.items() if k != "config")) + "</p>")
    notes_html = "".join(f"<p>{html.escape(s)}</p>" for s in notes)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
img{{image-rendering:pixelated;max-width:100%}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>LPIPS between the avatar rendered from each method's predicted vector and the one rendered
from the designer's vector (paper Sec. 4.2), both with the style parameters (background,
clothing) at the engine's defaults, so it compares faces. The attribute columns are the share
of faces where the avatar shows what the designer's does (skin tone, hair colour and style as
the exact option; glasses, facial hair and headwear as present or not). Discrete accuracy is
the mean over face heads of the share of exact options; continuous MAE is in [0, 1] units of
each parameter's range. The reference rows do not look at the photo: random vectors from the
engine's prior, and one constant vector (the designer's most frequent choice per parameter).
"Shifted faces" are the same people under pose, light, colour cast, blur and noise beyond the
face domain's training ranges.</p>
<p>{lp}</p>{es}{notes_html}
{table1_html(table1)}
{_table_html(rows)}
{robustness_html(robust)}
{_correspondence_html(correspondence or {})}
{''.join(fig_html)}
{_check_photos_html(check_photos or {})}
{_paper_html()}
</body></html>
"""
    html_path = write_text_atomic(out / "report.html", page)
    return ReportPaths(json=json_path, html=html_path, figures=fig_paths)


__all__ = ["PAPER_TABLE3", "ReportPaths", "figure6_sheet", "table_rows", "write_report",
           "write_results_json", "write_text_atomic"]
