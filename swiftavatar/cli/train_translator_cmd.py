"""`swiftavatar train-translator`: F2P v2's translator (Shi et al. 2020), an MLP from the
identity embedding to the avatar vector, trained without labels on procedural faces through
the frozen imitator with F2P's losses; writes a checkpoint that `swiftavatar f2p --translator`
reads."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from swiftavatar.cli.flags import add_config_flags, check, config_from_args
from swiftavatar.cli.train_parser_cmd import add_torch_flags, set_torch_threads

TRAIN_FLAGS = ("epochs", "batch", "lr", "loopback_weight", "temperature_start",
               "temperature_end", "seed")
LOSS_FLAGS = ("content_weight", "identity_weight", "face_weighting")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-translator", help="train F2P v2's translator (identity embedding -> avatar "
                                 "vector) through an imitator",
        description="Train F2P v2's translator (swiftavatar.f2p.translator): a multilayer "
                    "perceptron from the identity network's embedding of a face to the "
                    "imitator's relaxed input (a softmax per discrete parameter, annealed "
                    "towards one-hot over the epochs), trained without labels on unlabelled "
                    "procedural faces through the frozen imitator with F2P's facial-content "
                    "and identity losses (plain torch, no Ray). Writes OUT/checkpoint.pt and "
                    "OUT/meta.json (with the engine schema, the input networks and the "
                    "per-epoch losses) and prints a JSON line with the first and last loss; "
                    "`swiftavatar f2p PHOTO --translator OUT --identity RUN` then predicts a "
                    "vector per photo in one forward pass.")
    p.add_argument("--imitator", required=True, metavar="RUN",
                   help="imitator checkpoint or run directory (`swiftavatar train-imitator`)")
    p.add_argument("--parser", required=True, metavar="RUN",
                   help="face parser checkpoint or run directory (`swiftavatar train-parser`)")
    p.add_argument("--identity", required=True, metavar="RUN",
                   help="identity network checkpoint or run directory (`swiftavatar "
                        "train-identity`): the translator's input and the identity loss")
    p.add_argument("--out", required=True, help="run directory for the checkpoint")
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.f2p.optimize import F2PConfig
    from swiftavatar.f2p.translator import TranslatorConfig, TranslatorTrainConfig
    from swiftavatar.f2p.translator_train import TranslatorFacesConfig

    loss = TranslatorTrainConfig().loss
    add_config_flags(p, TranslatorFacesConfig)
    add_config_flags(p, TranslatorTrainConfig, TRAIN_FLAGS)
    add_config_flags(p, TranslatorConfig)
    add_config_flags(p, F2PConfig, LOSS_FLAGS,
                     defaults={name: getattr(loss, name) for name in LOSS_FLAGS})
    add_torch_flags(p)
    p.add_argument("--dry-run", action="store_true",
                   help="check the input networks, print the resolved config and exit")


def build_config(args: argparse.Namespace):
    """(TranslatorTrainConfig, TranslatorFacesConfig) from the flags; a bad value raises
    CliError naming its flag."""
    from swiftavatar.f2p.translator import TranslatorConfig, TranslatorTrainConfig
    from swiftavatar.f2p.translator_train import TranslatorFacesConfig

    base = TranslatorTrainConfig()
    loss = check(dataclasses.replace(base.loss, **{n: getattr(args, n) for n in LOSS_FLAGS}))
    model = config_from_args(TranslatorConfig, args)
    cfg = config_from_args(TranslatorTrainConfig, args, model=model, loss=loss)
    return cfg, config_from_args(TranslatorFacesConfig, args)


def _load_networks(args: argparse.Namespace):
    """(imitator, schema, parser, identity) on --device; a bad path raises CliError naming
    its flag."""
    from swiftavatar.cli.f2p_networks import load_flagged
    from swiftavatar.f2p.identity_train import IdentityCheckpointError, load_identity
    from swiftavatar.f2p.parser_train import ParserCheckpointError, load_parser
    from swiftavatar.imitator.checkpoint import ImitatorCheckpointError, load_imitator

    imitator, schema, _ = load_flagged("--imitator", ImitatorCheckpointError, load_imitator,
                                       args.imitator, args.device)
    parser, _ = load_flagged("--parser", ParserCheckpointError, load_parser, args.parser,
                             args.device)
    identity, _ = load_flagged("--identity", IdentityCheckpointError, load_identity,
                               args.identity, args.device)
    return imitator, schema, parser, identity


def _train(args: argparse.Namespace) -> int:
    cfg, faces = build_config(args)
    set_torch_threads(args)
    imitator, schema, parser, identity = _load_networks(args)
    faces = dataclasses.replace(faces, size=faces.size or imitator.cfg.image_size)
    inputs = {"imitator": args.imitator, "parser": args.parser, "identity": args.identity}
    if args.dry_run:
        print(json.dumps({"out": args.out, **inputs, "engine": schema.engine,
                          **faces.to_dict(), "config": cfg.to_dict()}, indent=2))
        return 0
    from swiftavatar.f2p.translator import save_translator
    from swiftavatar.f2p.translator_train import train_translator_run

    model, result = train_translator_run(
        imitator, parser, identity, schema, cfg, faces=faces.faces, face_seed=faces.face_seed,
        size=faces.size, inputs=inputs, device=args.device,
        log=lambda line: print(line, file=sys.stderr, flush=True))
    save_translator(args.out, model, cfg, result)
    print(json.dumps({"out": args.out, "seconds": round(result["seconds"], 1),
                      "loss_first": result["losses"][0], "loss_last": result["losses"][-1]},
                     sort_keys=True))
    return 0
