"""Avatar engines: schemas, vectors, the engine interface and the registry."""
from swiftavatar.engines.base import Engine, EngineError, EngineUnavailableError, RenderOutput
from swiftavatar.engines.registry import EngineSpec, available_engines, get_engine
from swiftavatar.engines.schema import (AvatarVector, ContinuousParam, DiscreteParam,
                                        EngineSchema, InvalidVectorError, Prior, SchemaError,
                                        VectorBatch)

__all__ = [
    "AvatarVector", "ContinuousParam", "DiscreteParam", "Engine", "EngineError", "EngineSchema",
    "EngineSpec", "EngineUnavailableError", "InvalidVectorError", "Prior", "RenderOutput",
    "SchemaError", "VectorBatch", "available_engines", "get_engine",
]
