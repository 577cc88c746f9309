"""The networks `swiftavatar f2p` runs: the imitator, face parser and identity network of F2P's
optimisation, or F2P v2's translator with its identity network; loading them from the
command's flags (a bad checkpoint is one line naming its flag) and F2P v2's per-photo step."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from swiftavatar.cli import CliError


@dataclass
class F2PNetworks:
    """What `--imitator`, `--parser`, `--identity` and `--translator` loaded (None: not
    given); `schema` is the engine schema the vectors decode into and `image_size` the side
    photos are fed at."""

    schema: Any
    image_size: int
    imitator: Any = None
    parser: Any = None
    identity: Any = None
    translator: Any = None
    translator_path: str | None = None


def load_networks(args: argparse.Namespace) -> F2PNetworks:
    """The networks the flags name, on --device; with --translator its schema must match
    --imitator's (when given) and its input the identity network's embedding size."""
    imitator = schema = parser = identity = None
    if args.imitator is not None:
        from swiftavatar.imitator.checkpoint import ImitatorCheckpointError, load_imitator

        imitator, schema, _ = load_flagged("--imitator", ImitatorCheckpointError,
                                           load_imitator, args.imitator, args.device)
    if args.translator is None:
        from swiftavatar.f2p.parser_train import ParserCheckpointError, load_parser

        parser, _ = load_flagged("--parser", ParserCheckpointError, load_parser, args.parser,
                                 args.device)
    if args.identity is not None:
        from swiftavatar.f2p.identity_train import IdentityCheckpointError, load_identity

        identity, _ = load_flagged("--identity", IdentityCheckpointError, load_identity,
                                   args.identity, args.device)
    if args.translator is None:
        return F2PNetworks(schema, imitator.cfg.image_size, imitator, parser, identity)
    from swiftavatar.f2p.translator import TranslatorCheckpointError
    from swiftavatar.f2p.translator_train import load_translator_for

    translator, schema, meta = load_flagged("--translator", TranslatorCheckpointError,
                                            load_translator_for, args.translator, schema,
                                            args.device)
    if identity.cfg.dim != translator.dim:
        trained_with = meta["result"].get("inputs", {}).get("identity")
        raise CliError(f"--identity: embeds into {identity.cfg.dim} dimensions, but the "
                       f"translator takes {translator.dim}; give the identity network it was "
                       f"trained with" + (f" ({trained_with})" if trained_with else ""))
    size = meta["result"].get("image_size") or (imitator.cfg.image_size if imitator else None)
    if size is None:
        raise CliError("--translator: its checkpoint records no image size; give the imitator "
                       "it was trained with as --imitator RUN")
    return F2PNetworks(schema, int(size), imitator, None, identity, translator, meta["path"])


def translate_row(nets: F2PNetworks, photos: Any) -> dict[str, Any]:
    """F2P v2 on one photo ((1, S, S, 3) uint8): {"method", "vector" (a VectorBatch),
    "translator" (its checkpoint), "seconds"}."""
    from swiftavatar.f2p.translator import translate

    t0 = time.perf_counter()
    vectors = translate(nets.translator, nets.identity, photos, nets.schema, nets.image_size)
    return {"method": "f2p_v2", "vector": vectors, "translator": nets.translator_path,
            "seconds": round(time.perf_counter() - t0, 4)}


def load_flagged(flag: str, error: type, load: Any, *args: Any) -> Any:
    """`load(*args)`, its `error` or FileNotFoundError raised as one CliError naming `flag`."""
    try:
        return load(*args)
    except (error, FileNotFoundError) as err:
        raise CliError(f"{flag}: {err}") from None


__all__ = ["F2PNetworks", "load_flagged", "load_networks", "translate_row"]
