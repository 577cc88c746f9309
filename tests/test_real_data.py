"""docs/real_data.md's path for real data, run as written: CelebAMask-HQ's per-part masks become
13-class label maps (`swiftavatar faces import-celebamask`), and the doc's command block runs end
to end on a tiny CelebAMask-HQ-shaped folder made from the built-in face domain, with flags
appended that shrink each stage (argparse keeps the last value of a repeated flag)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from swiftavatar.cli import build_parser
from swiftavatar.cli import main as cli_main
from swiftavatar.faces import FaceFolder, face_images
from swiftavatar.faces.celebamask import PARTS, combine_parts, import_celebamask, mask_path
from swiftavatar.semantics import HAIR, NUM_CLASSES, SKIN

DOC = REPO_ROOT / "docs" / "real_data.md"
MARKER = "<!-- tests/test_real_data.py runs this block"
N_FACES = 8

# Appended to the doc's commands, in order: the tiny settings of each step.
TINY = (
    ["--size", "32"],
    ["--size", "64", "--steps", "2", "--batch", "4", "--workers", "1", "--gpus-per-worker", "0",
     "--cpus-per-worker", "1", "--checkpoint-every", "2", "--sample-every", "0",
     "--no-progress"],
    ["--count", str(N_FACES), "--size", "64", "--workers", "1", "--shard-size", "8",
     "--no-progress"],
    ["--steps", "2", "--batch", "4", "--workers", "1", "--gpus-per-worker", "0",
     "--cpus-per-worker", "1", "--checkpoint-every", "2", "--sample-every", "0",
     "--no-progress"],
    ["--count", "2", "--shard-size", "2", "--steps", "2", "--augmentations", "1", "--n-mean",
     "64", "--lpips-backbone", "hed", "--workers", "1", "--gpus-per-worker", "0",
     "--batch-size", "2", "--no-progress"],
    ["--preset", "embedded", "--epochs", "1", "--batch", "4", "--input-size", "32",
     "--pretrained", "none", "--workers", "1", "--gpus-per-worker", "0", "--cpus-per-worker",
     "0.5", "--torch-threads", "1", "--val-fraction", "0", "--no-progress"],
    ["--align", "none", "--size", "64"],
)


def doc_commands() -> list[list[str]]:
    """The argument lists of the command block after MARKER in docs/real_data.md."""
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its tested block marker"
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words = shlex.split(line)
            assert words[0] == "swiftavatar", line
            commands.append(words[1:])
    return commands


def write_celebamask(root: Path, images: np.ndarray, masks: np.ndarray) -> list[int]:
    """Faces in CelebAMask-HQ's layout: images at twice the masks' size, one white-on-black
    file per part present (the first CelebAMask-HQ part of each class), ids across two mask
    folders as in the dataset (id // 2000)."""
    ids = [i * 1000 for i in range(len(images))]          # 0, 1000, 2000, ... -> folders 0..3
    first_part = {}
    for part, cls in PARTS:
        first_part.setdefault(cls, part)
    (root / "CelebA-HQ-img").mkdir(parents=True)
    for face_id, img, mask in zip(ids, images, masks):
        big = Image.fromarray(img).resize((2 * img.shape[1], 2 * img.shape[0]), Image.BILINEAR)
        big.save(root / "CelebA-HQ-img" / f"{face_id}.jpg", quality=95)
        for cls in np.unique(mask):
            if int(cls) == 0:
                continue
            path = mask_path(root, face_id, first_part[int(cls)])
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.where(mask == cls, 255, 0).astype(np.uint8)).save(path)
    return ids


@pytest.fixture(scope="module")
def faces():
    images, masks = face_images(11, list(range(N_FACES)), 32)
    return images, masks


def test_parts_combine_into_the_13_class_map_in_celebamask_order(tmp_path, faces):
    images, masks = faces
    ids = write_celebamask(tmp_path / "CelebAMask-HQ", images, masks)
    for face_id, mask in zip(ids, masks):
        assert np.array_equal(combine_parts(tmp_path / "CelebAMask-HQ", face_id), mask)
    # a later part is painted over an earlier one: hair over skin, whatever the file order
    src, both = tmp_path / "overlap", np.zeros((4, 4), np.uint8)
    both[:2] = 255
    for part in ("skin", "hair", "l_eye", "r_eye"):
        mask_path(src, 7, part).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(both if part in ("skin", "hair") else np.zeros_like(both)).save(
            mask_path(src, 7, part))
    label = combine_parts(src, 7)
    assert (label[:2] == HAIR).all() and (label[2:] == 0).all()
    assert {cls for _, cls in PARTS} == set(range(1, NUM_CLASSES)) and SKIN == PARTS[0][1]


def test_import_writes_a_face_folder_resumes_and_names_what_is_wrong(tmp_path, faces, capsys):
    images, masks = faces
    src, dst = tmp_path / "CelebAMask-HQ", tmp_path / "faces"
    write_celebamask(src, images, masks)
    assert cli_main(["faces", "import-celebamask", str(src), str(dst)]) == 0
    assert f"{N_FACES} faces written, 0 already there" in capsys.readouterr().out
    folder = FaceFolder(dst, 32)                      # default size: the masks' (32 px)
    assert len(folder) == N_FACES
    assert Image.open(folder.image_paths[0]).size == (32, 32)
    by_name = dict(zip(folder.names, range(N_FACES)))
    assert np.array_equal(folder[by_name["1000"]][1], masks[1])
    result = import_celebamask(src, dst, size=16)     # a re-run writes only what is missing
    assert (result.written, result.skipped) == (0, N_FACES)
    # errors: one line naming the problem, exit code 2
    (src / "CelebA-HQ-img" / "99.jpg").write_bytes((src / "CelebA-HQ-img" / "0.jpg").read_bytes())
    assert cli_main(["faces", "import-celebamask", str(src), str(tmp_path / "f2")]) == 2
    err = capsys.readouterr().err
    assert "face 99 has no part masks" in err and err.count("\n") == 1
    assert not (tmp_path / "f2" / "images" / "99.png").exists()
    assert cli_main(["faces", "import-celebamask", str(tmp_path), str(tmp_path / "f3")]) == 2
    assert "has no CelebA-HQ-img/ folder" in capsys.readouterr().err
    assert cli_main(["faces", "import-celebamask", str(tmp_path / "no"), str(dst)]) == 2
    assert "no does not exist" in capsys.readouterr().err
    assert cli_main(["faces", "import-celebamask", str(src), str(tmp_path / "f4"), "--size",
                     "0"]) == 2
    assert "--size must be positive" in capsys.readouterr().err


def test_the_doc_block_is_the_pipeline_and_every_command_parses():
    commands = doc_commands()
    assert [c[0] for c in commands] == ["faces", "train-generator", "render", "train-generator",
                                        "produce", "train-estimator", "predict"]
    assert len(commands) == len(TINY)
    parser = build_parser()
    for words, tiny in zip(commands, TINY):
        parser.parse_args(words)
        parser.parse_args(words + tiny)


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_doc_commands_run_end_to_end_on_a_tiny_folder(ray_local, tmp_path, faces,
                                                          monkeypatch, capsys):
    images, masks = faces
    monkeypatch.chdir(tmp_path)                       # the doc's paths are relative
    write_celebamask(tmp_path / "CelebAMask-HQ", images, masks)
    selfie, _ = face_images(12, [0], 64)
    Image.fromarray(selfie[0]).save(tmp_path / "selfie.jpg", quality=95)
    for words, tiny in zip(doc_commands(), TINY):
        assert cli_main(words + tiny) == 0, f"{words[0]}: {capsys.readouterr().err}"
        check_stage(words, tmp_path)


def check_stage(words: list[str], root: Path) -> None:
    """Each step's output exists and is usable by the next."""
    from swiftavatar.training.checkpoint import load_generator

    out = words[words.index("--out") + 1] if "--out" in words else None
    if words[0] == "faces":
        folder = FaceFolder(root / words[3], 32)           # faces import-celebamask SRC DST
        assert len(folder) == N_FACES and folder.load_batch([0, 1])[1].max() < NUM_CLASSES
    elif words[0] == "train-generator":
        g, meta = load_generator(root / out)
        assert meta["step"] == 2 and g.config.size == 64
        assert meta["domain"] == ("real" if "real" in words else "avatar")
        assert json.loads((root / out / "summary.json").read_text())
    elif words[0] == "render":
        from swiftavatar.shards import RenderedDataset

        assert RenderedDataset(str(root / out)).shard_paths()
    elif words[0] == "produce":
        card = json.loads((root / out / "dataset_card.json").read_text())
        assert card["complete"] and card["counts"]["pairs_written"] == 4
        assert card["lpips"]["backbone"] != "random"
    elif words[0] == "train-estimator":
        from swiftavatar.estimator.checkpoint import list_checkpoints

        assert list_checkpoints(root / out)
    elif words[0] == "predict":
        from swiftavatar.engines.registry import get_engine

        row = json.loads((root / out / "selfie.json").read_text())
        with get_engine("toon") as engine:
            engine.schema.vector(row["vector"])      # every parameter, valid (else it raises)
        assert Image.open(root / out / "selfie.png").size == (64, 64)


@pytest.mark.ray
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_official_checkpoint_stands_where_the_doc_puts_g_real(ray_local, tmp_path,
                                                                 monkeypatch, capsys):
    """The doc's alternative to steps 1-2: the official file wherever runs/g_real stands. A
    checkpoint in the official layout (random tensors, 32 px) through steps 3-5."""
    import torch
    from test_convert import official_args, official_discriminator_sd, official_generator_sd

    monkeypatch.chdir(tmp_path)
    args = official_args()
    official = tmp_path / "semanticstylegan_celebamask_512.pt"
    torch.save({"g": official_generator_sd(args, seed=5), "d": official_discriminator_sd(),
                "g_ema": official_generator_sd(args), "g_optim": {}, "d_optim": {},
                "args": args}, official)
    text = DOC.read_text()
    assert f"--init {official.name}" in text and f"--g-real {official.name}" in text
    for step in (2, 3, 4):                            # render, G_avatar, produce
        words = [official.name if w == "runs/g_real" else w for w in doc_commands()[step]]
        assert cli_main(words + TINY[step]) == 0, f"{words[0]}: {capsys.readouterr().err}"
    from swiftavatar.training.checkpoint import load_generator

    g, meta = load_generator(tmp_path / "runs" / "g_avatar")
    assert g.config.size == 32 and meta["step"] == 2
    card = json.loads((tmp_path / "data" / "pairs" / "dataset_card.json").read_text())
    assert card["complete"] and card["generators"]["real"]["path"].endswith(official.name)

