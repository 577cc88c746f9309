"""`swiftavatar sweep`: a hyperparameter sweep on Ray Tune from a sweep file (tune/*.yaml)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_ray_address_flags


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="hyperparameter sweep on Ray Tune, scored by validation LPIPS",
        description="Run the sweep a file in tune/ describes: each trial runs the stages its "
                    "parameters touch (re-augmentation, production, G_avatar finetuning; "
                    "cached and shared between trials), trains the estimator on Ray Train and "
                    "reports the validation LPIPS after every epoch; ASHA stops poor trials "
                    "early. Prints the results table and writes OUT/NAME/results.md, "
                    "results.csv, best_config.json and lpips_by_param.png. An interrupted sweep "
                    "resumes when the same command runs again. Uses the Ray cluster at "
                    "$RAY_ADDRESS (or --ray-address) when given, else a local one.")
    p.add_argument("file", metavar="FILE",
                   help="sweep file (YAML), e.g. tune/embedded.yaml, or the name of a shipped "
                        "one (embedded, estimator_loss, augmentation, inversion, color)")
    p.add_argument("--out", default="runs/sweeps",
                   help="directory of sweep experiments (OUT/NAME) and their stage cache "
                        "(OUT/cache) (default runs/sweeps)")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="paired dataset trials start from (default: the file's data.pairs)")
    p.add_argument("--renders", default=None, metavar="DIR",
                   help="engine renders for finetune.* trials (default: the file's "
                        "data.renders)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", dest="restart", action="store_false",
                      help="continue the sweep in OUT/NAME if there is one (the default)")
    mode.add_argument("--restart", dest="restart", action="store_true",
                      help="delete OUT/NAME and start the sweep anew (the stage cache stays)")
    add_ray_address_flags(p)
    p.add_argument("--dry-run", action="store_true",
                   help="validate the file and inputs, print the resolved sweep (stages, "
                        "trials, CPUs per trial, resume or start) and exit")
    p.set_defaults(handler=_sweep, restart=False)


def resolve(args: argparse.Namespace):
    """The SweepSpec of the command line: the file, --pairs / --renders, absolute paths."""
    from tune.spec import load_sweep

    spec = load_sweep(args.file)
    pairs = args.pairs or spec.pairs
    renders = args.renders or spec.renders
    return dataclasses.replace(spec, pairs=os.path.abspath(os.path.expanduser(pairs)),
                               renders=(os.path.abspath(os.path.expanduser(renders))
                                        if renders else None))


def _sweep(args: argparse.Namespace) -> int:
    from tune.runner import SweepPaths, check_inputs, run_sweep, trial_cpus

    spec = resolve(args)
    check_inputs(spec)
    paths = SweepPaths.of(spec, args.out)
    if args.dry_run:
        from ray.tune import Tuner

        exists = paths.experiment.is_dir() and Tuner.can_restore(str(paths.experiment))
        print(json.dumps({
            "sweep": spec.to_dict(), "fingerprint": spec.fingerprint(),
            "stages": list(spec.stages),
            "trials": (f"{spec.grid_trials()}" if all(p.kind in ("grid", "fixed")
                                                      for p in spec.params)
                       else f"{spec.grid_trials()} (num_samples x grid points)"),
            "cpus_per_trial": trial_cpus(spec),
            "cpus_needed": trial_cpus(spec) * spec.budget.max_concurrent_trials,
            "experiment": str(paths.experiment), "cache": str(paths.cache),
            "would": ("restart" if args.restart and exists else
                      "resume" if exists else "start")}, indent=2, default=str))
        return 0
    summary = run_sweep(spec, args.out, restart=args.restart, ray_address=args.ray_address)
    print(summary["table"])
    best = summary["best"]
    if best is None:
        raise CliError(f"no trial reported val_lpips; see the trial errors in "
                       f"{paths.experiment}")
    print(f"best: trial {best['trial_id']} val_lpips {best['val_lpips']:.4f} "
          f"{json.dumps(best['values'])}")
    for name, path in summary["paths"].items():
        print(f"{name}: {path}")
    return 0
