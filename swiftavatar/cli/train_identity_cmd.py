"""`swiftavatar train-identity`: the identity embedding of F2P's identity loss, trained like a
face-recognition network on procedural identities under varied pose, light and camera, with
its held-out face-verification report."""
from __future__ import annotations

import argparse
import json
import sys

from swiftavatar.cli.flags import add_config_flags, config_from_args
from swiftavatar.cli.train_parser_cmd import add_torch_flags, set_torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-identity", help="train F2P's identity embedding on procedural identities",
        description="Train the identity embedding whose cosine distance gives F2P's identity "
                    "loss (swiftavatar.f2p.identity): a small convolutional network with a "
                    "unit-norm output, trained with a cosine-softmax classifier over "
                    "procedural identities, each rendered in several views (pose, light, "
                    "camera) of the realistic domain (plain torch, no Ray). Writes "
                    "OUT/checkpoint.pt and OUT/meta.json with the verification report on "
                    "held-out identities (accuracy at the best threshold, ROC AUC), and "
                    "prints that report.")
    p.add_argument("--out", required=True, help="run directory for the checkpoint")
    p.defer(_add_flags)
    p.set_defaults(handler=_train)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.f2p.identity_train import IdentityTrainConfig

    add_config_flags(p, IdentityTrainConfig)
    add_torch_flags(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved config and exit")


def _train(args: argparse.Namespace) -> int:
    from swiftavatar.f2p.identity_train import IdentityTrainConfig

    cfg = config_from_args(IdentityTrainConfig, args)
    set_torch_threads(args)
    if args.dry_run:
        print(json.dumps({"out": args.out, **cfg.to_dict()}, indent=2))
        return 0
    from swiftavatar.f2p.identity_train import save_identity, train_identity

    model, result = train_identity(cfg, device=args.device,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))
    save_identity(args.out, model, cfg, result)
    print(json.dumps({"out": args.out, "seconds": round(result["seconds"], 1),
                      **result["report"]}, sort_keys=True))
    return 0
