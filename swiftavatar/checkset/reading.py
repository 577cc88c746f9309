"""The avatar's attributes in a check record's categories, read off predicted vectors.

The engine's parameter for each attribute and whether it is present come from the noticed-
attribute table of the designer evaluation (swiftavatar.evaluation.noticed); this module only
sorts each engine option into the categories a person writes down (records.CATEGORIES). The
sorting is a judgement made once per engine by looking at its renders: a toon "light_brown"
hair reads as light, an avataaars "brown" skin as medium. An option outside every category
(blue hair) reads as itself, so it never counts as right.
"""
from __future__ import annotations

from typing import Mapping

from swiftavatar.engines.schema import VectorBatch
from swiftavatar.evaluation.noticed import attribute_table


def _sort(groups: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """{category: options} -> {option: category}."""
    return {opt: cat for cat, opts in groups.items() for opt in opts}


# engine -> check field -> {engine option: category}, for the fields read as an option
OPTION_CATEGORIES: dict[str, dict[str, dict[str, str]]] = {
    "toon": {
        "skin_tone": _sort({"light": ("porcelain", "fair", "light"),
                            "medium": ("medium", "olive", "tan"),
                            "dark": ("brown", "dark", "deep")}),
        "hair_colour": _sort({"dark": ("black", "dark_brown", "brown"),
                              "light": ("light_brown", "blonde", "platinum"),
                              "grey-white": ("grey",), "red": ("auburn", "ginger")}),
        "hair_length": _sort({"bald": ("bald",),
                              "short": ("buzz", "short", "side_part", "quiff", "pixie",
                                        "mohawk"),
                              "medium": ("bangs", "bob", "curly", "afro"),
                              "long": ("shoulder_length", "long_straight", "long_wavy",
                                       "ponytail", "bun")}),
    },
    "avataaars": {
        "skin_tone": _sort({"light": ("pale", "light", "yellow"),
                            "medium": ("tanned", "brown"),
                            "dark": ("dark_brown", "black")}),
        "hair_colour": _sort({"dark": ("black", "brown", "brown_dark"),
                              "light": ("blonde", "blonde_golden", "platinum"),
                              "grey-white": ("silver_gray",), "red": ("auburn", "red")}),
        "hair_length": _sort({
            "bald": ("no_hair",),
            "short": ("caesar_side_part", "caesar", "frizzle", "shaved_sides", "short_curly",
                      "short_dreads_1", "short_dreads_2", "short_flat", "short_round",
                      "short_waved", "sides", "buzzcut", "cornrows", "einstein_hair", "elvis",
                      "evil_spike", "half_shaved", "mohawk", "mowgli", "pixie", "pompadour",
                      "quiff"),
            "medium": ("bob", "curly", "curly_2", "dreads", "fro", "fro_band", "shaggy",
                       "shaggy_mullet", "wick", "wild"),
            "long": ("big_hair", "bun", "curvy", "frida", "long_not_too_long", "mia_wallace",
                     "straight_1", "straight_2", "straight_strand", "braids", "bride",
                     "dreadlocks", "long_hair_curly", "loose_hair", "twist_long_hair",
                     "twist_long_hair_2")}),   # hats hide the length: they read as "hidden"
    },
}
# check field -> the noticed attribute it reads
NOTICED = {"skin_tone": "skin tone", "hair_colour": "hair colour", "hair_length": "hair style",
           "glasses": "glasses", "facial_hair": "facial hair", "headwear": "headwear"}
BALD_HAIR = "none"        # a bald avatar's hair colour: no hair shows, so no colour is right


def readable_fields(schema) -> list[str]:
    """The check fields this engine's avatars can be read for."""
    table = attribute_table(schema)
    cats = OPTION_CATEGORIES.get(schema.engine, {})
    return [f for f, attr in NOTICED.items()
            if attr in table and (table[attr].mode != "option" or f in cats)]


def read_avatars(vectors: VectorBatch) -> list[dict[str, str]]:
    """Per vector {check field: category} for the readable fields (readable_fields)."""
    schema = vectors.schema
    table = attribute_table(schema)
    cats = OPTION_CATEGORIES.get(schema.engine, {})
    rows: list[dict[str, str]] = [{} for _ in range(len(vectors))]
    for field in readable_fields(schema):
        spec = table[NOTICED[field]]
        values = spec.read(vectors)
        if spec.mode == "option":
            options = next(p.options for p in schema.discrete if p.name == spec.param)
            labels = [cats[field].get(options[v], "hidden" if field == "hair_length"
                                      else options[v]) for v in values]
        else:
            labels = ["yes" if v else "no" for v in values]
        for row, label in zip(rows, labels):
            row[field] = label
    for row in rows:
        if row.get("hair_length") == "bald" and "hair_colour" in row:
            row["hair_colour"] = BALD_HAIR
    return rows


__all__ = ["NOTICED", "OPTION_CATEGORIES", "read_avatars", "readable_fields"]
