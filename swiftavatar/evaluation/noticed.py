"""The attributes a person notices first in an avatar, read off avatar vectors.

LPIPS says how far two avatars are; these say which mistakes a person would see: the wrong
skin tone or hair colour, another hair style, glasses, a beard or a hat that the face has not
(or lacks one it has). Each attribute is read from one discrete parameter, either as its exact
option ("option") or as presence: any option but a "none" label ("not"), or any option whose
label starts with a prefix ("prefix"). Engines without a table here report no attributes;
`register_attributes` adds one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from swiftavatar.engines.schema import EngineSchema, VectorBatch

ATTRIBUTES = ("skin tone", "hair colour", "hair style", "glasses", "facial hair", "headwear")
MODES = ("option", "not", "prefix")


@dataclass(frozen=True)
class Attribute:
    param: str            # a discrete parameter of the engine
    mode: str = "option"  # "option": the option itself; "not": != label; "prefix": startswith
    label: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Attribute mode must be one of {MODES}, got {self.mode!r}")

    def read(self, vectors: VectorBatch) -> np.ndarray:
        """(N,) int labels: the option index, or 0/1 presence."""
        schema = vectors.schema
        j = [p.name for p in schema.discrete].index(self.param)
        col = vectors.discrete[:, j]
        if self.mode == "option":
            return col.astype(np.int64)
        options = schema.discrete[j].options
        if self.mode == "not":
            return (col != options.index(self.label)).astype(np.int64)
        hit = np.array([o.startswith(self.label) for o in options])
        return hit[col].astype(np.int64)


_TABLES: dict[str, dict[str, Attribute]] = {
    "toon": {"skin tone": Attribute("skin_tone"), "hair colour": Attribute("hair_color"),
             "hair style": Attribute("hair_style"),
             "glasses": Attribute("glasses", "not", "none"),
             "facial hair": Attribute("facial_hair", "not", "none"),
             "headwear": Attribute("headwear", "not", "none")},
    "avataaars": {"skin tone": Attribute("skin_color"), "hair colour": Attribute("hair_color"),
                  "hair style": Attribute("top"),
                  "glasses": Attribute("accessory", "not", "none"),
                  "facial hair": Attribute("facial_hair", "not", "none"),
                  "headwear": Attribute("top", "prefix", "hat_")},
}


def register_attributes(engine: str, table: Mapping[str, Attribute]) -> None:
    """Set the noticed-attribute table of `engine` (names free, ATTRIBUTES advised)."""
    _TABLES[engine] = dict(table)


def attribute_table(schema: EngineSchema) -> dict[str, Attribute]:
    """The table for the schema's engine, checked against its parameters ({} if none)."""
    table = _TABLES.get(schema.engine, {})
    names = {p.name: p for p in schema.discrete}
    for attr, spec in table.items():
        p = names.get(spec.param)
        if p is None:
            raise ValueError(f"attribute {attr!r} reads {spec.param!r}, which engine "
                             f"{schema.engine!r} does not have as a discrete parameter")
        if spec.mode == "not" and spec.label not in p.options:
            raise ValueError(f"attribute {attr!r}: {spec.param!r} has no option {spec.label!r}")
    return table


def attribute_accuracy(predicted: VectorBatch, reference: VectorBatch) -> dict[str, float]:
    """{attribute: share of rows where the predicted avatar shows what the reference shows}."""
    return {name: float((spec.read(predicted) == spec.read(reference)).mean())
            for name, spec in attribute_table(reference.schema).items()}


__all__ = ["ATTRIBUTES", "Attribute", "attribute_accuracy", "attribute_table",
           "register_attributes"]
