"""`swiftavatar export-onnx --model SPEC --out FILE.onnx`: an estimator checkpoint as ONNX, for
ONNX Runtime on the CPU (swiftavatar.estimator.onnx_export). After writing, it runs the file in
ONNX Runtime beside torch on a few random inputs and prints the largest difference."""
from __future__ import annotations

import argparse
from pathlib import Path

from swiftavatar.cli import CliError

CHECK_TOLERANCE = 1e-4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx", help="export an estimator to ONNX for ONNX Runtime on the CPU",
        description="Write an estimator checkpoint as an ONNX file (BatchNorm folded, dynamic "
                    "batch axis, input (N, 3, S, S) float in [-1, 1], outputs `cont` and "
                    "`logits_J`, the checkpoint's identity in the file's metadata), then check "
                    "that ONNX Runtime gives torch's outputs on random inputs. The file is "
                    "written atomically. Exit code 2 on a bad flag or checkpoint, 1 when the "
                    "check fails.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="the estimator: a checkpoint file or directory, a training run "
                        "directory (its latest checkpoint), or pretrained:NAME (e.g. "
                        "pretrained:toon)")
    p.add_argument("--out", required=True, metavar="FILE.onnx",
                   help="the ONNX file to write (replaced if it exists)")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise CliError(f"--out: {out} is a folder; name a file, e.g. {out / 'estimator.onnx'}")
    import torch

    from swiftavatar.estimator.checkpoint import EstimatorCheckpointError, find_checkpoint, \
        load_estimator
    from swiftavatar.estimator.onnx_export import OPSET, export_onnx
    from swiftavatar.estimator.onnx_runtime import OnnxEstimator, onnxruntime_available
    from swiftavatar.metrics.vgg_hed import file_sha256

    try:
        model, schema, _ = load_estimator(args.model)
        sha = file_sha256(find_checkpoint(args.model))
    except (EstimatorCheckpointError, FileNotFoundError) as err:
        raise CliError(f"--model: {err}") from None
    export_onnx(model, schema, out, checkpoint_sha256=sha)
    mb = out.stat().st_size / 2 ** 20
    print(f"{out}: engine {schema.engine} (schema {schema.version}, {schema.fingerprint}), "
          f"input {model.config.input_size} px, opset {OPSET}, {mb:.1f} MiB")
    if not onnxruntime_available():
        print("onnxruntime is not installed: the file was not checked")
        return 0
    size = model.config.input_size
    x = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        want = model(x)
    got = OnnxEstimator(out)(x)
    pairs = list(zip(got["logits"], want["logits"]))
    if model.n_continuous:
        pairs.append((got["cont"], want["cont"]))
    diff = max(float((g - w).abs().max()) for g, w in pairs)
    ok = diff <= CHECK_TOLERANCE
    print(f"ONNX Runtime against torch on 4 random inputs: largest difference {diff:.2e} "
          f"({'within' if ok else 'OVER'} {CHECK_TOLERANCE:g})")
    return 0 if ok else 1
