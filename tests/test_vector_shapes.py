"""Malformed vector input is refused with InvalidVectorError naming the problem, also under
`python -O` (no assert does the checking): wrong shapes, row counts, schema versions, deep JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from swiftavatar.engines.registry import get_engine
from swiftavatar.engines.schema import (AvatarVector, EngineSchema, InvalidVectorError,
                                        SchemaError, VectorBatch)


@pytest.fixture(scope="module")
def toon() -> EngineSchema:
    return get_engine("toon").schema


def test_a_wrong_width_is_not_reshaped_into_other_rows(toon):
    with pytest.raises(InvalidVectorError, match=r"continuous values have shape \(2, 9\)"):
        VectorBatch(toon, np.zeros((2, 9)), np.zeros((1, 17)))
    with pytest.raises(InvalidVectorError, match="discrete values have shape"):
        VectorBatch(toon, np.zeros((1, 18)), np.zeros((17,))[None, None])


def test_row_counts_must_agree(toon):
    with pytest.raises(InvalidVectorError, match="row counts differ: 2 continuous rows, 3"):
        VectorBatch(toon, np.zeros((2, 18)), np.zeros((3, 17)))


def test_good_shapes_still_work(toon):
    assert len(VectorBatch(toon, np.zeros(18), np.zeros(17))) == 1
    assert len(VectorBatch(toon, np.zeros((0, 18)), np.zeros((0, 17)))) == 0
    assert len(toon.default_vector().batch()) == 1


def test_shape_checks_survive_python_O():
    code = ("import numpy as np\n"
            "from swiftavatar.engines.registry import get_engine\n"
            "from swiftavatar.engines.schema import InvalidVectorError, VectorBatch\n"
            "s = get_engine('toon').schema\n"
            "try:\n"
            "    VectorBatch(s, np.zeros((2, 18)), np.zeros((3, 17)))\n"
            "except InvalidVectorError as e:\n"
            "    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: row counts differ" in out.stdout


def test_from_json_refuses_another_schema_version(toon):
    d = json.loads(toon.default_vector().to_json())
    assert AvatarVector.from_json(toon, json.dumps(d)) == toon.default_vector()
    d["schema_version"] = "0.9"
    with pytest.raises(InvalidVectorError, match="schema version '0.9'"):
        AvatarVector.from_json(toon, json.dumps(d))


def test_deeply_nested_json_is_refused_not_a_recursion_error(toon):
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(InvalidVectorError, match="nested too deeply"):
        AvatarVector.from_json(toon, deep)
    with pytest.raises(SchemaError, match="nested too deeply"):
        EngineSchema.from_json(deep)
