"""The Serve application: `build_app(args)` (the import path a Serve config file names, args
being ServeSettings as a dict), the options of each deployment from the settings, the
`serve deploy`-ready config file, and starting the service on the Ray instance in use."""
from __future__ import annotations

import json
from typing import Any

from actors.serving.settings import ServeSettings

APP_NAME = "swiftavatar"
IMPORT_PATH = "actors.serving.app:build_app"
FACE, ESTIMATOR, RENDERER, INGRESS = "FaceFramer", "Estimator", "Renderer", "Ingress"
MAX_SURGE_PERCENT = 100    # Serve's default, 0, stops an old replica before its replacement


def settings_of(args: dict[str, Any] | ServeSettings) -> ServeSettings:
    """ServeSettings from a config file's args (unknown or bad values: ValueError naming
    them)."""
    settings = args if isinstance(args, ServeSettings) else ServeSettings.from_dict(args)
    bad = settings.problems()
    if bad:
        raise ValueError("; ".join(f"{name} {msg}" for name, msg in bad))
    return settings


def deployment_options(settings: ServeSettings) -> dict[str, dict[str, Any]]:
    """{deployment name: its Serve options}: replicas (or autoscaling between them and
    --max-replicas), CPUs and GPUs per replica, requests in flight per replica, and rolling
    updates that keep the old replicas answering until their replacements are up."""
    s = settings

    def options(replicas: int, cpus: float, gpus: float, ongoing: int, target: int
                ) -> dict[str, Any]:
        out: dict[str, Any] = {"ray_actor_options": {"num_cpus": cpus, "num_gpus": gpus},
                               "max_ongoing_requests": ongoing,
                               # an update starts new replicas before it stops old ones
                               "max_surge_percent": MAX_SURGE_PERCENT}
        if s.max_replicas:
            out["autoscaling_config"] = {"min_replicas": replicas,
                                         "initial_replicas": replicas,
                                         "max_replicas": s.max_replicas,
                                         # scale out at `target` requests a replica
                                         "target_ongoing_requests": min(target, ongoing)}
        else:
            out["num_replicas"] = replicas
        return out

    ongoing = s.max_ongoing_requests
    return {FACE: options(s.face_replicas, s.face_cpus, 0.0, ongoing, 8),
            ESTIMATOR: options(s.estimator_replicas, s.estimator_cpus, s.estimator_gpus,
                               max(ongoing, 2 * s.max_batch_size), max(4, s.max_batch_size)),
            RENDERER: options(s.render_replicas, s.render_cpus, s.render_gpus, ongoing, 8),
            INGRESS: options(s.ingress_replicas, s.ingress_cpus, 0.0, max(256, 4 * ongoing),
                             128)}


def build_app(args: dict[str, Any]) -> Any:
    """The application (a Serve config file's import path): face framing, estimator and
    renderer deployments behind the HTTP ingress."""
    from ray import serve

    from actors.serving.deployments import (EstimatorDeployment, FaceDeployment,
                                            RenderDeployment)
    from actors.serving.http_api import Ingress

    s = settings_of(args)
    opts = deployment_options(s)
    models = s.named_models

    def deployment(cls: type, name: str) -> Any:
        return serve.deployment(cls, name=name).options(**opts[name])

    face = deployment(FaceDeployment, FACE).bind(s.align, s.min_face_confidence)
    estimator = deployment(EstimatorDeployment, ESTIMATOR).bind(
        models, s.device, s.max_batch_size, s.batch_wait_ms / 1000.0, s.runtime)
    renderer = deployment(RenderDeployment, RENDERER).bind(models)
    return deployment(Ingress, INGRESS).bind(face, estimator, renderer, s.to_dict())


def serve_config(settings: ServeSettings) -> dict[str, Any]:
    """The `serve deploy` config (ServeDeploySchema) for the same settings."""
    deployments = [{"name": name, **opts} for name, opts in
                   deployment_options(settings).items()]
    return {"proxy_location": "EveryNode",
            "http_options": {"host": settings.host, "port": settings.port},
            "applications": [{"name": APP_NAME, "route_prefix": "/",
                              "import_path": IMPORT_PATH,
                              "args": json.loads(json.dumps(settings.to_dict())),
                              "deployments": deployments}]}


def start_service(settings: ServeSettings) -> str:
    """Start Serve's HTTP proxy on the settings' host and port and run the application on
    the Ray instance in use (ray.init first); returns its URL once every replica is up."""
    from ray import serve

    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings.to_dict()), name=APP_NAME, route_prefix="/",
              blocking=False)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


__all__ = ["APP_NAME", "IMPORT_PATH", "build_app", "deployment_options", "serve_config",
           "settings_of", "start_service"]
