"""The report's Table 1 (Baseline, F2P, F2P v2, SwiftAvatar) from evaluation rows and timings,
and the baselines' run-directory rule (a network trained with another config is refused)."""
import json

import pytest

from swiftavatar.evaluation.metrics import EvalResult
from swiftavatar.evaluation.table1 import table1_html, table1_rows, table1_text


def _result(method, lpips, engine="toon", eval_set="faces", n=5):
    return EvalResult(method=method, engine=engine, schema_fingerprint="f", n=n, size=64,
                      lpips_mean=lpips, lpips_std=0.1, lpips_per_face=[lpips] * n,
                      lpips_info={}, discrete_accuracy={}, discrete_accuracy_mean=None,
                      continuous_mae={}, continuous_mae_mean=None, eval_set=eval_set)


METHODS = ("Baseline", "+ domain adaptation", "+ semantic augmentation", "F2P", "F2P v2")


def test_rows_follow_the_paper_s_order_with_times_and_skip_incomplete_engines():
    results = [_result(m, 0.1 * (i + 1)) for i, m in enumerate(METHODS)]
    results += [_result("+ semantic augmentation", 0.9, eval_set="shifted faces")]
    results += [_result("Baseline", 0.3, engine="other")]              # no F2P rows: left out
    timing = {"toon": {m: {"ms_median": ms, "faces": 4, "torch_threads": 2}
                       for m, ms in (("Baseline", 4.0), ("F2P", 2000.0), ("F2P v2", 2.5),
                                     ("+ semantic augmentation", 5.0))}}
    rows = table1_rows(results, timing)
    assert [(r["engine"], r["method"]) for r in rows] == [
        ("toon", m) for m in ("Baseline", "F2P", "F2P v2", "SwiftAvatar")]
    swift = rows[-1]
    assert swift["lpips"] == pytest.approx(0.3)          # the in-range faces, not the shifted
    assert swift["lpips_sem"] == pytest.approx(0.1 / 2)  # std / sqrt(n - 1)
    assert (swift["ms_per_face"], swift["hz"]) == (5.0, 200.0)
    assert rows[1]["hz"] == 0.5
    text = table1_text(rows)
    assert "| F2P | 0.4000 ± 0.0500 | 2000.0 |" in text and text.count("\n") == 5
    page = table1_html(rows)
    assert "Table 1" in page and "2000.0" in page and "TikTok" in page
    assert table1_rows(results, {})[0]["ms_per_face"] is None     # untimed: n/a, not 0
    assert "n/a" in table1_text(table1_rows(results, {}))
    assert table1_html([]) == "" and table1_text([]) == ""
    json.dumps(rows, allow_nan=False)


def test_a_baseline_network_trained_with_another_config_is_refused(tmp_path):
    from actors.f2p_baselines import train_or_load
    from swiftavatar.f2p.parser_train import (ParserTrainConfig, load_parser, save_parser,
                                              train_parser)
    import numpy as np

    cfg = ParserTrainConfig(size=16, train_faces=4, val_faces=2, epochs=1, batch=4)
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8),
            rng.integers(0, 13, (4, 16, 16), dtype=np.uint8))
    calls = []

    def train(c=cfg):
        calls.append(c)
        return train_parser(c, data=data, val=data)

    dest = tmp_path / "parser"
    first, _ = train_or_load(dest, cfg, "face parser", train, save_parser, load_parser)
    again, meta = train_or_load(dest, cfg, "face parser", train, save_parser, load_parser)
    assert len(calls) == 1 and meta["path"].endswith("checkpoint.pt")      # loaded, not trained
    other = ParserTrainConfig(size=16, train_faces=4, val_faces=2, epochs=2, batch=4)
    with pytest.raises(ValueError, match="another config: use a new --out"):
        train_or_load(dest, other, "face parser", lambda: train(other), save_parser,
                       load_parser)
    assert len(calls) == 1
