"""Reading a paired dataset (the output of `swiftavatar produce`) back: the finished shards'
rows and the Figure-5 contact sheet. Ray-free; the rows are made by
`swiftavatar.production.rows` and written by the produce pipeline (actors/produce_stage.py)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from swiftavatar import shards

PAIR_DIR = "pairs"  # pairs/part-XXXXX.parquet: kept rows; the file marks the shard finished
DROPPED_DIR = "dropped"  # rows the quality gate dropped (same columns, kept = False)
FIGURE_FILE = "figure5.png"
FIGURE_SAMPLES = 8
FIGURE_AUGS = 3


def shard_rows(fs: pafs.FileSystem, paths: dict[int, str], done: dict[int, str],
          columns: list[str] | None) -> pa.Table | None:
    """The rows of the shard files in `paths` whose shard is finished (in `done`)."""
    tables = [pq.read_table(p, filesystem=fs, columns=columns) for k, p in paths.items()
              if k in done]
    return pa.concat_tables(tables) if tables else None


def write_figure5(out: str, n: int = FIGURE_SAMPLES, augs: int = FIGURE_AUGS) -> bool:
    """Contact sheet like the paper's Figure 5, one row per sample (the first n kept):
    render | reconstruction | realistic | augmented x `augs`. False when nothing is there."""
    from PIL import Image

    from swiftavatar import viz

    fs, base = shards.resolve(out)
    done = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    cols = ["sample_id", "aug_index", "avatar_png", "reconstruction_png", "realistic_png"]
    table = None
    for path in done.values():  # shards in sample order: stop once n samples are in
        t = pq.read_table(path, filesystem=fs, columns=cols).filter(
            pc.field("aug_index") <= augs)
        table = t if table is None else pa.concat_tables([table, t])
        if len(set(table.column("sample_id").to_pylist())) >= n:
            break
    if table is None or table.num_rows == 0:
        return False
    table = table.sort_by([("sample_id", "ascending"), ("aug_index", "ascending")])
    by_id: dict[int, dict[int, dict[str, bytes]]] = {}
    for r in table.to_pylist():
        by_id.setdefault(r["sample_id"], {})[r["aug_index"]] = r
    tiles, labels = [], []
    side = None
    for sid in sorted(by_id)[:n]:
        row = by_id[sid]
        imgs = [row[0]["avatar_png"], row[0]["reconstruction_png"], row[0]["realistic_png"]]
        imgs += [row[a]["realistic_png"] for a in range(1, augs + 1) if a in row]
        for j, png in enumerate(imgs + [None] * (3 + augs - len(imgs))):
            img = None if png is None else shards.decode_png(png)
            side = side or (img.shape[0] if img is not None else 64)
            if img is None:
                img = np.full((side, side, 3), 255, np.uint8)
            elif img.shape[:2] != (side, side):
                img = np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR))
            tiles.append(img)  # (side, side, 3) uint8
            labels.append(str(sid) if j == 0 else "")
    sheet = viz.grid(np.stack(tiles), ncols=3 + augs, labels=labels)
    shards.write_bytes_atomic(fs, shards.join(base, FIGURE_FILE), shards.encode_png(sheet))
    return True


def read_pairs(out: str, columns: list[str] | None = None, dropped: bool = False) -> pa.Table:
    """All finished shards' pair rows (or the gate's dropped rows), sorted by
    (sample_id, aug_index)."""
    fs, base = shards.resolve(out)
    done = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    paths = shards.list_shards(fs, shards.join(base, DROPPED_DIR)) if dropped else done
    t = shard_rows(fs, paths, done, columns)
    if t is None:
        raise FileNotFoundError(f"{out} holds no finished pair shards")
    return t.sort_by([("sample_id", "ascending"), ("aug_index", "ascending")])


MASK_COLUMNS = ("avatar_mask_png", "realistic_mask_png")
CORRESPONDENCE_PAIRS = 512   # inverted pairs (aug_index 0) the dataset card's report reads


def pairs_correspondence(out: str, max_pairs: int = CORRESPONDENCE_PAIRS):
    """The correspondence report (swiftavatar.evaluation.correspondence) of the first
    `max_pairs` inverted pairs (aug_index 0): the engine render with its mask (or G_avatar's
    segmentation where the engine has none) against the realistic face with G_real's. None
    when the dataset holds no pair or predates the mask columns."""
    from swiftavatar.evaluation.correspondence import correspondence

    fs, base = shards.resolve(out)
    done = shards.list_shards(fs, shards.join(base, PAIR_DIR))
    cols = ["aug_index", "avatar_png", "realistic_png", *MASK_COLUMNS]
    parts, n = [], 0
    for path in done.values():
        if not set(MASK_COLUMNS) <= set(pq.read_schema(path, filesystem=fs).names):
            return None
        t = pq.read_table(path, filesystem=fs, columns=cols).filter(pc.field("aug_index") == 0)
        parts.append(t)
        n += t.num_rows
        if n >= max_pairs:
            break
    if n == 0:
        return None
    rows = pa.concat_tables(parts).slice(0, max_pairs).to_pydict()
    arrays = [np.stack([shards.decode_png(p) for p in rows[c]])
              for c in ("avatar_png", "avatar_mask_png", "realistic_png", "realistic_mask_png")]
    return correspondence(*arrays)


__all__ = ["CORRESPONDENCE_PAIRS", "DROPPED_DIR", "FIGURE_FILE", "MASK_COLUMNS", "PAIR_DIR",
           "pairs_correspondence", "read_pairs", "write_figure5"]
