"""`swiftavatar faces import-celebamask`: real face data into the face-folder layout that
`train-generator --domain real --data` reads."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("faces", help="prepare real face data (a face folder: images/ + masks/)")
    fsub = p.add_subparsers(dest="faces_command", metavar="ACTION")
    fsub.required = True
    pi = fsub.add_parser(
        "import-celebamask",
        help="combine CelebAMask-HQ's per-part masks into 13-class label maps",
        description="Write CelebAMask-HQ (SRC holds CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/) "
                    "as a face folder DST/images/<id>.png + DST/masks/<id>.png with the 13-class "
                    "layout of swiftavatar.semantics. Files are written atomically; re-running "
                    "writes only the faces still missing.")
    pi.add_argument("src", metavar="SRC", help="the CelebAMask-HQ folder")
    pi.add_argument("dst", metavar="DST", help="the face folder to write")
    pi.add_argument("--size", type=int, default=None,
                    help="resize images and masks to SIZE x SIZE (default: the masks' size, "
                         "512 for CelebAMask-HQ)")
    pi.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from swiftavatar.faces.celebamask import import_celebamask

    if args.size is not None and args.size < 1:
        from swiftavatar.cli import CliError
        raise CliError(f"--size must be positive, got {args.size}")
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty and (done % 100 == 0 or done == total):
            print(f"\rimported {done}/{total}", end="\n" if done == total else "",
                  file=sys.stderr)

    result = import_celebamask(args.src, args.dst, size=args.size, progress=progress)
    print(f"{args.dst}: {result.written} faces written, {result.skipped} already there")
    return 0
