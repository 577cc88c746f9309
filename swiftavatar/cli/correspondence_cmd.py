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

from dataclasses import dataclass

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.config import StageConfig, option


@dataclass(frozen=True)
class CorrespondenceConfig(StageConfig):
    """What `correspondence` measures: a paired dataset, or two generators' codes."""

    pairs: str | None = option(None, metavar="DIR",
                               help="a paired dataset made by `swiftavatar produce`")
    g_avatar: str | None = option(
        None, metavar="CKPT", help="G_avatar checkpoint (file, dir, run dir or pretrained:NAME)")
    g_real: str | None = option(
        None, metavar="CKPT", help="G_real checkpoint (file, dir, run dir or pretrained:NAME)")
    n: int = option(512, help="pairs to read, or codes to draw")
    seed: int = option(0, help="seed of the drawn codes")
    truncation: float = option(
        1.0, help="generators: pull the codes towards G_real's mean w (default {default}: none)")
    json: str | None = option(None, metavar="FILE", help="also write the report here")

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        need = self.checker(out)
        need(self.n >= 1, "n", "must be >= 1")
        need(0.0 < self.truncation <= 1.0, "truncation", "must be in (0, 1]")
        return out


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
    add_config_flags(p, CorrespondenceConfig)
    p.set_defaults(handler=_correspondence)


def _correspondence(args: argparse.Namespace) -> int:
    config_from_args(CorrespondenceConfig, args)  # bad values: CliError naming the flag
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
