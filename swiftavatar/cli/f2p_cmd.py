"""`swiftavatar f2p PHOTO... --imitator RUN --parser RUN [--identity RUN]`: F2P (Shi et al.
2019), per-photo gradient descent on the avatar vector through the imitator, minimising the
face parser's facial-content loss and, with --identity, the identity loss; with
`--translator RUN --identity RUN`, F2P v2 (Shi et al. 2020) instead: one forward pass of the
translator per photo, no optimisation. Writes OUT/<name>.json (the vector, and F2P's loss
history) and OUT/<name>.png (the engine's render of the vector)."""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from swiftavatar.cli import CliError
from swiftavatar.cli.f2p_networks import load_networks, translate_row
from swiftavatar.cli.flags import add_config_flags, config_from_args

F2P_FLAGS = ("steps", "lr", "lr_decay", "lr_decay_every", "content_weight", "identity_weight",
             "face_weighting", "temperature_start", "temperature_end")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "f2p", help="fit avatar vectors to face photos by F2P's optimisation through an "
                    "imitator",
        description="F2P (Shi et al. 2019): for each photo, start from the engine's default "
                    "vector and descend the facial-content loss (the face parser's features "
                    "of the photo against those of the imitator's render) with Adam on the "
                    "relaxed vector (discrete options as a softmax annealed towards one-hot), "
                    "then decode a valid vector and render it with the engine. Photos must "
                    "be centred head crops (they are centre-cropped to a square). Writes "
                    "OUT/<name>.json and OUT/<name>.png per photo. With --identity and "
                    "--identity-weight > 0 the loss adds F2P's identity loss: 1 - the cosine "
                    "similarity of the identity embeddings of photo and render. With "
                    "--translator (F2P v2, `swiftavatar train-translator`) each photo costs "
                    "one embedding by --identity and one forward pass of the translator "
                    "instead; F2P's optimisation flags and --parser are then unused.")
    p.add_argument("images", nargs="+", metavar="PHOTO", help="face photos (JPEG, PNG, ...)")
    p.add_argument("--imitator", metavar="RUN",
                   help="imitator checkpoint or run directory (`swiftavatar train-imitator`; "
                        "required without --translator, checked against it with one)")
    p.add_argument("--parser", metavar="RUN",
                   help="face parser checkpoint or run directory (`swiftavatar train-parser`; "
                        "required without --translator)")
    p.add_argument("--identity", metavar="RUN",
                   help="identity network checkpoint or run directory (`swiftavatar "
                        "train-identity`) for the identity loss (needs --identity-weight > 0), "
                        "or the translator's input (with --translator)")
    p.add_argument("--translator", metavar="RUN",
                   help="F2P v2: translator checkpoint or run directory (`swiftavatar "
                        "train-translator`); predicts each vector in one forward pass instead "
                        "of F2P's optimisation; needs --identity")
    p.add_argument("--out", default="f2p", help="output folder (default f2p)")
    p.add_argument("--size", type=int, default=256, help="render size in px (default 256)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch threads (default 1: F2P's small steps ran about 40x slower on "
                        "2 threads than on 1 on a busy 2-core machine; 0: torch's own choice)")
    p.defer(_add_flags)
    p.set_defaults(handler=_run)


def _add_flags(p: argparse.ArgumentParser) -> None:
    from swiftavatar.f2p.optimize import F2PConfig

    add_config_flags(p, F2PConfig, F2P_FLAGS)


def _run(args: argparse.Namespace) -> int:
    from swiftavatar.f2p.optimize import F2PConfig

    cfg = config_from_args(F2PConfig, args)
    if args.size < 16:
        raise CliError(f"--size must be >= 16, got {args.size}")
    if args.torch_threads < 0:
        raise CliError(f"--torch-threads must be >= 0, got {args.torch_threads}")
    _check_inputs(args, cfg)
    import numpy as np
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    from swiftavatar import atomic
    from swiftavatar.engines.registry import get_engine
    from swiftavatar.f2p.optimize import f2p
    from swiftavatar.prediction_files import output_names
    from swiftavatar.selfies import ImageInputError, center_square, load_rgb_image, \
        resize_square

    nets = load_networks(args)
    schema = nets.schema
    good, bad = [], 0
    for path, name in zip(args.images, output_names(args.images)):
        try:
            img = load_rgb_image(path)
        except ImageInputError as err:
            print(f"swiftavatar f2p: {err}", file=sys.stderr)
            bad += 1
            continue
        good.append((path, name, resize_square(center_square(img), nets.image_size)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with get_engine(schema.engine) as engine:
        if engine.schema.fingerprint != schema.fingerprint:
            flag, cmd = (("--translator", "translator") if args.imitator is None
                         else ("--imitator", "imitator"))
            raise CliError(f"{flag}: trained on engine {schema.engine!r} schema "
                           f"{schema.fingerprint}, but that engine now has "
                           f"{engine.schema.fingerprint}; train the {cmd} again")
        for path, name, photo in good:
            if nets.translator is not None:
                row = translate_row(nets, np.asarray(photo)[None])
            else:
                vec, hist = f2p(nets.imitator, nets.parser, np.asarray(photo)[None], schema,
                                cfg, identity=nets.identity, device=args.device)
                row = {"method": "f2p", "vector": vec,
                       "loss_first": hist["loss"][0], "loss_last": hist["loss"][-1],
                       "identity_last": hist["identity"][-1],
                       "decoded_loss": hist["decoded_loss"],
                       "seconds": round(hist["seconds"], 3)}
            vec = row.pop("vector")
            render = engine.render(vec, args.size).images[0]
            row = {"image": path, "engine": schema.engine, "vector": vec[0].to_dict(), **row}
            atomic.write_bytes(out / f"{name}.png", _png(render))
            atomic.write_json(out / f"{name}.json", row)
            print(json.dumps(row, sort_keys=True))
    done = "fitted" if nets.translator is None else "predicted"
    print(f"swiftavatar f2p: {len(good)} {done}, {bad} bad -> {out}", file=sys.stderr)
    return 1 if bad else 0


def _check_inputs(args: argparse.Namespace, cfg) -> None:
    """Which networks the command needs: one line naming a missing flag or a mismatch."""
    if args.translator is not None:
        if args.identity is None:
            raise CliError("--translator needs --identity RUN: the identity network the "
                           "translator was trained with (its meta.json names it)")
        return
    for flag in ("imitator", "parser"):
        if getattr(args, flag) is None:
            raise CliError(f"--{flag} RUN is required (or --translator RUN and --identity RUN "
                           f"for F2P v2)")
    if (args.identity is None) != (cfg.identity_weight == 0):
        raise CliError("--identity RUN and --identity-weight W > 0 go together (F2P: 0.01); "
                       "give both or neither")


def _png(image) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
