"""The report's light-and-colour check: shifted faces against in-range faces per method."""
import pytest

from swiftavatar.evaluation.metrics import EvalResult
from swiftavatar.evaluation.robustness import robustness_html, robustness_rows


def _result(method, eval_set, lpips, acc, engine="toon"):
    return EvalResult(method=method, engine=engine, schema_fingerprint="f", n=4, size=64,
                      lpips_mean=lpips, lpips_std=0.0, lpips_per_face=[lpips] * 4,
                      lpips_info={}, discrete_accuracy={}, discrete_accuracy_mean=None,
                      continuous_mae={}, continuous_mae_mean=None, attribute_accuracy=acc,
                      eval_set=eval_set)


def test_gaps_are_relative_to_the_in_range_set_and_judged_at_ten_percent():
    results = [
        _result("A", "faces", 0.20, {"skin tone": 0.50, "glasses": 0.80}),
        _result("B", "faces", 0.20, {"skin tone": 0.50, "glasses": 0.0}),
        _result("constant", "faces", 0.19, {"skin tone": 0.3}),          # no shifted row
        _result("A", "shifted faces", 0.21, {"skin tone": 0.46, "glasses": 0.90}),
        _result("B", "shifted faces", 0.23, {"skin tone": 0.50, "glasses": 0.0}),
    ]
    rows = robustness_rows(results)
    assert [r["method"] for r in rows] == ["A", "B"]          # only methods on both sets
    a, b = rows
    assert a["gaps"]["lpips"] == pytest.approx(0.05)          # 0.21 vs 0.20: 5% worse
    assert a["gaps"]["skin tone"] == pytest.approx(0.08)      # 0.46 vs 0.50: 8% worse
    assert a["gaps"]["glasses"] == pytest.approx(-0.125)      # better when shifted
    assert a["within"] and a["worst"] == "skin tone"
    assert b["gaps"]["lpips"] == pytest.approx(0.15) and not b["within"]
    assert b["gaps"]["glasses"] == 0.0                        # 0 in range: absolute gap
    page = robustness_html(rows)
    assert "skin tone +8%" in page and "lpips +15%" in page and "<td>no</td>" in page
    assert robustness_html([]) == ""
