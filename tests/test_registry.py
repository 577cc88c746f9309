"""Finding engines: built-in names, 'module:attr' targets and third-party entry points."""
from __future__ import annotations

import pickle
import textwrap

import numpy as np
import pytest

from engines_for_tests import TARGET, SquaresEngine
from swiftavatar.engines.registry import (ENTRY_POINT_GROUP, EngineSpec, UnknownEngineError,
                                          available_engines, get_engine)

BUILTINS = ("toon", "avataaars", "grpc")


def test_builtins_are_listed_without_package_metadata():
    engines = available_engines()
    for name in BUILTINS:
        assert name in engines and ":" in engines[name]
    assert list(engines) == sorted(engines)


def test_unknown_engine_error_lists_the_available_ones():
    with pytest.raises(UnknownEngineError) as e:
        get_engine("no-such-engine")
    text = str(e.value)
    assert text.startswith("unknown engine 'no-such-engine'; available: ")
    for name in BUILTINS:
        assert name in text
    assert ENTRY_POINT_GROUP in text and "module:attr" in text
    assert isinstance(e.value, KeyError) and not text.startswith('"')  # plain text, no quotes


def test_module_attr_target_builds_without_registration():
    engine = get_engine(TARGET, masks=False)
    assert isinstance(engine, SquaresEngine) and not engine.schema.supports_masks
    vector = engine.schema.vector({"hue": 0.2, "scale": 0.5, "offset_x": 0.0, "shape": "disc",
                                   "background": "dark"})
    out = engine.render(vector.batch(), 16)
    assert out.images.shape == (1, 16, 16, 3) and out.masks is None


@pytest.mark.parametrize("target, words", [
    ("no_such_module_xyz:Engine", "cannot import engine target 'no_such_module_xyz:Engine'"),
    ("engines_for_tests:NoSuchEngine", "has no attribute 'NoSuchEngine'"),
    (":SquaresEngine", "expected 'module:attr'"),
])
def test_bad_module_attr_targets_are_explained(target, words):
    with pytest.raises(UnknownEngineError) as e:
        get_engine(target)
    assert words in str(e.value)


def test_wrong_engine_options_are_explained():
    with pytest.raises(ValueError, match="does not take options \\['colour'\\]"):
        get_engine(TARGET, colour="red")


def test_engine_spec_parses_grpc_and_survives_pickling():
    spec = EngineSpec.parse("grpc://127.0.0.1:50051")
    assert (spec.name, spec.options) == ("grpc", {"address": "127.0.0.1:50051"})
    assert EngineSpec.parse("grpc://h:1", {"address": "other:2"}).options["address"] == "other:2"
    local = EngineSpec(TARGET, {"masks": False})
    back = pickle.loads(pickle.dumps(local))
    assert back == local and hash(back) == hash(local)
    assert back.build().schema.fingerprint == SquaresEngine(masks=False).schema.fingerprint


THIRD_PARTY_CODE = '''
import numpy as np

from swiftavatar.engines.base import Engine, RenderOutput
from swiftavatar.engines.schema import ContinuousParam, EngineSchema


class GreyEngine(Engine):
    name = "grey"

    def __init__(self, level_scale=1.0):
        self.level_scale = level_scale
        self._schema = EngineSchema("grey", "0.1", (ContinuousParam("level", 0.0, 1.0, 0.5),), ())

    @property
    def schema(self):
        return self._schema

    def _render(self, batch, size):
        v = np.clip(batch.continuous[:, 0] * self.level_scale * 255, 0, 255).astype(np.uint8)
        images = np.broadcast_to(v[:, None, None, None], (len(batch), size, size, 3)).copy()
        return RenderOutput(images)


def make_grey(**options):
    return GreyEngine(**options)


class Factories:
    @staticmethod
    def grey(**options):
        return GreyEngine(**options)


def make_buggy(level_scale=1.0):
    return GreyEngine(level_scale=level_scale) + 1  # a bug inside the engine's own code
'''


@pytest.fixture
def third_party_dist(tmp_path, monkeypatch):
    """An installed-looking distribution on sys.path: a package plus its dist-info with
    entry points, as pip would leave it."""
    pkg = tmp_path / "grey_avatars"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(THIRD_PARTY_CODE)
    info = tmp_path / "grey_avatars-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: grey-avatars\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [{ENTRY_POINT_GROUP}]
        grey = grey_avatars:GreyEngine
        grey-factory = grey_avatars:make_grey
        grey-nested = grey_avatars:Factories.grey
        toon = grey_avatars:GreyEngine

        [console_scripts]
        not-an-engine = grey_avatars:make_grey
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    import sys

    sys.modules.pop("grey_avatars", None)


def test_third_party_engine_found_through_a_real_entry_point(third_party_dist):
    engines = available_engines()
    assert engines["grey"] == "grey_avatars:GreyEngine"
    assert engines["grey-factory"] == "grey_avatars:make_grey"
    assert "not-an-engine" not in engines  # other groups are not engines
    assert engines["toon"] == "swiftavatar.engines.toon:ToonEngine"  # may not shadow a built-in
    engine = get_engine("grey", level_scale=0.5)
    assert type(engine).__module__ == "grey_avatars"
    batch = engine.schema.vector({"level": 1.0}).batch()
    assert engine.render(batch, 16).images[0, 0, 0].tolist() == [127, 127, 127]
    factory_made = EngineSpec("grey-factory").build()
    np.testing.assert_array_equal(factory_made.render(batch, 16).images, 255)
    nested = get_engine("grey-nested", level_scale=0.5)  # 'module:Class.attr' values load too
    assert nested.render(batch, 16).images[0, 0, 0].tolist() == [127, 127, 127]


def test_a_type_error_inside_an_engine_is_not_blamed_on_its_options(third_party_dist):
    with pytest.raises(TypeError, match="unsupported operand"):
        get_engine("grey_avatars:make_buggy", level_scale=0.5)
    with pytest.raises(ValueError, match="does not take options \\['colour'\\]"):
        get_engine("grey_avatars:make_buggy", colour="red")


def test_third_party_engine_disappears_with_its_distribution(third_party_dist, monkeypatch):
    monkeypatch.syspath_prepend(str(third_party_dist / "elsewhere"))
    assert "grey" in available_engines()
    import sys

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(third_party_dist)])
    assert "grey" not in available_engines()
    with pytest.raises(UnknownEngineError, match="unknown engine 'grey'"):
        get_engine("grey")


def test_cli_engines_list_and_describe(capsys):
    from swiftavatar.cli import main as cli_main
    from swiftavatar.engines.schema import EngineSchema
    from swiftavatar.engines.toon_schema import SCHEMA

    assert cli_main(["engines", "list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == sorted(listed) and set(BUILTINS) <= set(listed)
    assert cli_main(["engines", "describe", "toon", "--json"]) == 0
    assert EngineSchema.from_json(capsys.readouterr().out).fingerprint == SCHEMA.fingerprint
    assert cli_main(["engines", "describe", "toon"]) == 0
    text = capsys.readouterr().out
    assert f"fingerprint {SCHEMA.fingerprint}" in text and "hair_style" in text
    assert cli_main(["engines", "describe", "nope"]) == 2
    assert "unknown engine 'nope'" in capsys.readouterr().err
