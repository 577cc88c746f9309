"""`swiftavatar train-parser`: the face parser of F2P's facial-content loss, trained on the
procedural face domain's images and 13-class masks, with its held-out accuracy report."""
from __future__ import annotations

import argparse
import json
import sys

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-parser", help="train F2P's face parser on procedural faces and their masks",
        description="Train the face parser whose encoder features give F2P's facial-content "
                    "loss (swiftavatar.f2p.parser): a small convolutional segmenter into the "
                    "13 face classes, on procedural faces and masks of the realistic domain "
                    "(plain torch, no Ray). Writes OUT/checkpoint.pt and OUT/meta.json with "
                    "the held-out pixel accuracy and mean IoU, and prints that report.")
    p.add_argument("--out", required=True, help="run directory for the checkpoint")
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.f2p.parser_train import ParserTrainConfig

    add_config_flags(p, ParserTrainConfig)
    add_torch_flags(p)


def add_torch_flags(p: argparse.ArgumentParser) -> None:
    """--device and --torch-threads of the plain torch training commands."""
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch threads (default 1, as measured; 0: torch's own choice)")


def set_torch_threads(args: argparse.Namespace) -> None:
    """Check --torch-threads (one line naming it) and apply it."""
    import torch

    if args.torch_threads < 0:
        raise CliError(f"--torch-threads must be >= 0, got {args.torch_threads}")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)


def _train(args: argparse.Namespace) -> int:
    from swiftavatar.f2p.parser_train import ParserTrainConfig, save_parser, train_parser

    cfg = config_from_args(ParserTrainConfig, args)
    set_torch_threads(args)
    model, result = train_parser(cfg, device=args.device,
                                 log=lambda line: print(line, file=sys.stderr, flush=True))
    save_parser(args.out, model, cfg, result)
    print(json.dumps({"out": args.out, "seconds": round(result["seconds"], 1),
                      **result["report"]}, sort_keys=True))
    return 0
