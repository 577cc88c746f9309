"""`swiftavatar correspondence`: does the realistic face show what the avatar shows?

Two inputs, no training: a paired dataset (`--pairs DIR`: its inverted pairs, the engine's
render and mask against G_real's face and segmentation), or the dual-domain generators alone
(`--g-avatar CKPT --g-real CKPT`: the same codes through both). Prints the report
(swiftavatar.evaluation.correspondence) and, with --json, writes it.
"""
from __future__ import annotations

import argparse
import json
import sys

from swiftavatar.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "correspondence",
        help="measure how well realistic faces carry the avatar's hair, skin, hat, glasses",
        description="Measure dual-domain correspondence without training anything: per "
                    "region (hair, skin, background, clothing, glasses, hat) the CIELAB "
                    "distance between the region's mean colour in the avatar and in the "
                    "realistic face and the two masks' IoU, and whether glasses, a hat and "
                    "facial hair are present on both sides. Give a paired dataset (--pairs) "
                    "or two generators (--g-avatar and --g-real).")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="a paired dataset made by `swiftavatar produce`")
    p.add_argument("--g-avatar", default=None, metavar="CKPT",
                   help="G_avatar checkpoint (file, dir, run dir or pretrained:NAME)")
    p.add_argument("--g-real", default=None, metavar="CKPT",
                   help="G_real checkpoint (file, dir, run dir or pretrained:NAME)")
    p.add_argument("--n", type=int, default=512,
                   help="pairs to read, or codes to draw (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn codes (default 0)")
    p.add_argument("--truncation", type=float, default=1.0,
                   help="generators: pull the codes towards G_real's mean w (default 1: none)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report here")
    p.set_defaults(handler=_correspondence)


def _correspondence(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise CliError(f"--n must be >= 1, got {args.n}")
    if not 0.0 < args.truncation <= 1.0:
        raise CliError(f"--truncation must be in (0, 1], got {args.truncation}")
    gens = (args.g_avatar, args.g_real)
    if bool(args.pairs) == any(gens):
        raise CliError("give either --pairs DIR or both --g-avatar and --g-real")
    if args.pairs:
        from swiftavatar.production.pairs import pairs_correspondence

        try:
            report = pairs_correspondence(args.pairs, args.n)
        except FileNotFoundError as err:
            raise CliError(f"--pairs: {err}") from None
        if report is None:
            raise CliError(f"--pairs: {args.pairs} holds no finished pairs with masks "
                           f"(datasets made before the mask columns cannot be measured: "
                           f"produce it again)")
        source = {"pairs": args.pairs}
    else:
        if not all(gens):
            raise CliError("--g-avatar and --g-real go together")
        from swiftavatar.evaluation.correspondence import correspondence, generator_pairs
        from swiftavatar.training.checkpoint import CheckpointError, load_generator

        loaded = []
        for flag, spec in (("--g-avatar", args.g_avatar), ("--g-real", args.g_real)):
            try:
                loaded.append(load_generator(spec)[0])
            except (CheckpointError, FileNotFoundError) as err:
                raise CliError(f"{flag}: {err}") from None
        g_avatar, g_real = loaded
        if (g_avatar.n_latent, g_avatar.config.style_dim) != (g_real.n_latent,
                                                              g_real.config.style_dim):
            raise CliError("--g-avatar and --g-real have different latent layouts: G_avatar "
                           "must be finetuned from this G_real")
        report = correspondence(*generator_pairs(g_avatar, g_real, args.n, seed=args.seed,
                                                 truncation=args.truncation))
        source = {"g_avatar": args.g_avatar, "g_real": args.g_real, "seed": args.seed,
                  "truncation": args.truncation}
    print(report.table())
    if args.json:
        from swiftavatar.evaluation.report import write_results_json

        write_results_json(args.json, {"source": source, "report": report.to_dict()})
        print(f"swiftavatar correspondence: report -> {args.json}", file=sys.stderr)
    return 0


__all__ = ["register"]
