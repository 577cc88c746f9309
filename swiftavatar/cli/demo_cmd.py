"""`swiftavatar demo`: the main job on the embedded default (stages in actors/main_job.py).

Render -> paired data from the shipped generators -> Baseline / + domain adaptation /
+ semantic augmentation estimators -> evaluation against the designer -> report. Re-running
the same command into the same `--out` resumes: finished shards and checkpoints are kept.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, add_ray_address_flags, config_from_args
from swiftavatar.config import StageConfig, option


@dataclass(frozen=True)
class DemoOptions(StageConfig):
    """The options of `demo`: a preset and the few knobs a user turns (actors.main_job.DemoConfig
    holds the whole resolved run)."""

    out: str = option("runs/demo", help="run directory")
    quick: bool = option(False, help="small preset for a smoke run (minutes); its numbers are "
                                     "labelled quick")
    seed: int = option(0, help="seed for every stage")
    workers: int = option(2, help="actors per stage")
    engines: str | None = option(
        None, metavar="SPEC[,SPEC]",
        help="these engines, in this order (default: toon,avataaars): a registered name or "
             "entry point, module:Class or grpc://HOST:PORT. An engine outside the preset is "
             "rendered and produced like its first engine, with a G_avatar finetuned for it, "
             "and scored against a designer where one exists (docs/engines.md)")
    finetune: str = option(
        "auto", choices=("auto", "always", "never"),
        help="G_avatar per engine: auto (default) uses the shipped, GPU-finetuned G_avatar "
             "where one exists and finetunes one from the shipped G_real on the renders "
             "otherwise; always finetunes for every engine (about 5 min per 200 steps on 2 CPU "
             "cores); never fails without a shipped one")
    finetune_steps: int | None = option(None, metavar="N",
                                        help="generator steps of a finetune (default 200)")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.workers >= 1, "workers", "must be >= 1")
        need(self.seed >= 0, "seed", "must be >= 0")
        need(self.finetune_steps is None or self.finetune_steps >= 1, "finetune_steps",
             "must be >= 1")
        return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole pipeline on the embedded default (the README's main job)",
        description="Run the pipeline on the embedded default, on a local Ray instance (or the "
                    "cluster at $RAY_ADDRESS): render a dataset per engine (toon, avataaars), "
                    "produce paired data from the shipped generators (inversion, realistic "
                    "faces, semantic augmentation, Figure 5), train the Baseline, + domain "
                    "adaptation and + semantic augmentation estimators on Ray Train, evaluate "
                    "them against the designer on held-out faces and write "
                    "OUT/report/report.html (ablation table, Figure 6). Re-running resumes.")
    add_config_flags(p, DemoOptions)
    add_ray_address_flags(p)
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(handler=_demo)


def resolve(args: argparse.Namespace):
    """The DemoConfig the flags ask for (actors.main_job)."""
    from actors.main_job import DemoConfig

    opts = config_from_args(DemoOptions, args)    # bad values: CliError naming the flag
    kw = dict(out=opts.out, seed=opts.seed, workers=opts.workers)
    cfg = DemoConfig.quick(**kw) if opts.quick else DemoConfig(**kw)
    tune = {"finetune": opts.finetune}
    if opts.finetune_steps is not None:
        tune["finetune_steps"] = opts.finetune_steps
    cfg = dataclasses.replace(cfg, produce=tuple(dataclasses.replace(p, **tune)
                                                 for p in cfg.produce))
    if opts.engines:
        from actors.demo_engines import with_engines

        wanted = [e.strip() for e in opts.engines.split(",") if e.strip()]
        try:
            cfg = with_engines(cfg, wanted)
        except (KeyError, ValueError) as e:
            raise CliError(f"--engines: {e}") from None
    for run in cfg.produce:                # before any stage: --finetune never needs one
        try:
            run.needs_finetune()
        except ValueError:
            from swiftavatar.pretrained import ENGINE_G_AVATAR

            raise CliError(f"--finetune never: engine {run.engine!r} has no shipped G_avatar "
                           f"(shipped: {', '.join(ENGINE_G_AVATAR)}); use --finetune auto to "
                           f"finetune one") from None
    return cfg


def _demo(args: argparse.Namespace) -> int:
    cfg = resolve(args)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    from actors.main_job import run_demo
    from actors.produce_stage import ProduceStageError
    from actors.render_stage import ConfigMismatchError, RenderStageError
    from swiftavatar.rundir import RunLockedError

    try:
        report = run_demo(cfg, ray_address=args.ray_address)
    except (RenderStageError, ProduceStageError) as e:
        raise CliError(f"{e} (the same `demo` command resumes)") from None
    except RunLockedError as e:
        raise CliError(str(e)) from None
    except ConfigMismatchError as e:  # render's and produce's
        # the stage's own advice names its --overwrite flag; the demo never overwrites
        what = str(e).split("; use --overwrite")[0]
        raise CliError(f"{what}; the demo does not overwrite: pass a new --out, or delete "
                       f"that directory to make it again") from None
    print(f"\n{'engine':<12}{'rendered':>10}{'errors':>8}{'shards':>8}{'wall s':>8}  sheet")
    for r in report["render"]:
        print(f"{r['engine']:<12}{r['rendered']:>10}{r['errors']:>8}{r['shards_total']:>8}"
              f"{r['wall_s']:>8.1f}  {Path(r['out']) / 'contact_sheet.png'}")
    if report.get("finetune"):
        print(f"\n{'engine':<12}{'G_avatar step':>14}{'images':>8}{'wall s':>8}  checkpoint")
    for r in report.get("finetune", []):
        print(f"{r['engine']:<12}{r['step']:>14}{r['images']:>8}{r['wall_s']:>8.1f}  "
              f"{r['checkpoint']}")
    if report["produce"]:
        print(f"\n{'engine':<12}{'samples':>10}{'pairs':>8}{'dropped':>8}{'wall s':>8}  figure 5")
    for r in report["produce"]:
        print(f"{r['engine']:<12}{r['samples']:>10}{r['pairs']:>8}{r['dropped']:>8}"
              f"{r['wall_s']:>8.1f}  {r['figure5']}")
    if report.get("evaluation"):
        print(f"\n{'engine':<11}{'method':<28}{'faces':<9}{'LPIPS':>8}{'+-':>7}{'disc acc':>10}"
              f"{'cont MAE':>10}")
        for r in report["evaluation"]:
            mae = r["continuous_mae_mean"]
            where = {"faces": "held-out", "shifted faces": "shifted",
                     "engine renders": "renders"}.get(r.get("eval_set", ""), r.get("eval_set", ""))
            sem = r.get("lpips_sem")
            print(f"{r['engine']:<11}{r['method']:<28}{where:<9}{r['lpips_mean']:>8.4f}"
                  f"{'-' if sem is None else format(sem, '.4f'):>7}"
                  f"{r['discrete_accuracy_mean']:>10.3f}"
                  f"{'-' if mae is None else format(mae, '.3f'):>10}")
        print(f"LPIPS backbone: {report['evaluation'][0]['lpips_backbone']}; HTML report: "
              f"{report['report_html']}")
    for check in report.get("check_photos", {}).values():
        print(check["line"])
    for note in report.get("no_designer", {}).values():
        print(note)
    print(f"\nreport: {Path(cfg.out) / 'report.json'}  ({cfg.preset} preset, "
          f"{report['wall_s']} s)")
    return 0
