"""`swiftavatar serve --model RUN [--model RUN2 ...]`: the HTTP service on Ray Serve (face
framing, the estimator with dynamic batching, the engine renderer; actors/serving/), or with
--write-config FILE its `serve deploy` config for the same settings."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from swiftavatar.cli import CliError
from swiftavatar.cli.flags import add_config_flags, add_ray_address_flags, config_from_args
from swiftavatar.pretrained import ESTIMATOR, PREFIX, shipped_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve estimators over HTTP on Ray Serve (POST /v1/avatars, /v1/render)",
        description="Serve one or more estimators over HTTP on Ray Serve: a photo in, the "
                    "avatar vector, its render and the face crop out; renders of edited "
                    "vectors; the models' schemas (API page at /docs); a web page at / to make "
                    "and edit an avatar in a browser. Starts a local Ray "
                    "instance, or uses the cluster at $RAY_ADDRESS (--ray-address), and "
                    "serves until Ctrl-C or SIGTERM. With --write-config it only writes the "
                    "Serve config file for `serve deploy` and exits.")
    p.add_argument("--model", action="append", metavar="[NAME=]CKPT", default=[],
                   help="an estimator to serve (repeat for several): a checkpoint file, "
                        "checkpoint dir or training run dir, or a shipped one ("
                        + ", ".join(f"{PREFIX}{n}" for n in shipped_names(ESTIMATOR))
                        + "); requests name it by NAME (default: the shipped name or the "
                          "path's last part)")
    p.add_argument("--write-config", metavar="FILE", default=None,
                   help="write the `serve deploy` config (YAML) for these settings to FILE "
                        "and exit, without starting anything")
    add_ray_address_flags(p)

    def settings_flags(parser: argparse.ArgumentParser) -> None:
        from actors.serving.settings import ServeSettings

        add_config_flags(parser, ServeSettings)

    p.defer(settings_flags)
    p.set_defaults(handler=_serve_http)


def _serve_http(args: argparse.Namespace) -> int:
    from actors.serving.settings import ServeSettings

    settings = config_from_args(ServeSettings, args, models=tuple(args.model))
    if args.write_config:
        return _write_config(settings, args.write_config)
    _check_models(settings)
    from ray import serve

    from actors.serving.app import start_service
    from actors.session import ray_session
    from swiftavatar.engines.grpc_server import exposure_warning

    warning = exposure_warning(settings.host)
    if warning:
        print(f"swiftavatar serve: {warning}", file=sys.stderr, flush=True)
    with ray_session(args.ray_address):
        url = start_service(settings)
        try:
            print(f"serving {', '.join(settings.named_models)} on {url} (web page: {url}/, "
                  f"API page: {url}/docs)", flush=True)
            print("Ctrl-C stops", file=sys.stderr, flush=True)
            signal.signal(signal.SIGTERM, _interrupt)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            serve.shutdown()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _check_models(settings) -> None:
    """Each model loads and its engine is one this machine may build (one line naming the
    model otherwise), and the align mode can run, before Ray starts."""
    from swiftavatar.predictor import LoadedEstimator, PredictorError, open_engine, \
        resolve_align

    try:
        resolve_align(settings.align, "serve")
        for name, spec in settings.named_models.items():
            est = LoadedEstimator(spec)
            open_engine(None, est.schema, spec).close()
    except PredictorError as err:
        raise CliError(str(err)) from None


def _write_config(settings, path: str) -> int:
    import yaml

    from actors.serving.app import IMPORT_PATH, serve_config
    from swiftavatar import atomic

    text = (f"# `serve deploy` config written by `swiftavatar serve --write-config`: the "
            f"application\n# is built by {IMPORT_PATH} from `args` (the same settings as "
            f"the flags);\n# `deployments` may be edited (replicas, resources, "
            f"autoscaling).\n" + yaml.safe_dump(serve_config(settings), sort_keys=False))
    atomic.write_text(path, text)
    print(json.dumps({"config": str(path), "models": settings.named_models}))
    return 0
