import math

import pytest

from labkit import LabkitError, stats


def test_t_quantiles_match_the_table_and_fall_to_normal():
    assert stats.t95(2) == pytest.approx(4.303)
    assert stats.t95(12) == pytest.approx(2.228)  # rounded down to 10 degrees of freedom: wider, never narrower
    assert stats.t95(100) == 1.96


def test_paired_interval_by_hand():
    p = stats.paired([3.0, 4.0, 5.0], [1.0, 1.0, 1.0], "new", "old", "pt")
    assert p.diffs == (2.0, 3.0, 4.0) and p.mean == 3.0
    assert p.half_width == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert p.verdict == "higher" and "new is higher than old" in p.text()


def test_verdicts_follow_the_interval():
    assert stats.paired([1.0, -1.0, 0.5], [0.0, 0.0, 0.0]).verdict == "within noise"
    assert stats.paired([0.0, 0.0, 0.0], [1.0, 1.1, 0.9]).verdict == "lower"
    within = stats.paired([1.0, 1.5], [0.0, 0.0])  # two seeds: t = 12.7, a wide interval
    assert within.verdict == "within noise" and within.low < 0 < within.high


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(LabkitError, match="one value per seed"):
        stats.paired([1.0, 2.0], [1.0])
    with pytest.raises(LabkitError, match="at least two seeds"):
        stats.paired([1.0], [1.0])
    with pytest.raises(LabkitError, match="finite"):
        stats.paired([1.0, float("nan")], [1.0, 1.0])


def test_speed_verdict_names_the_margin():
    assert stats.speed_verdict(1.5).startswith("faster")
    assert stats.speed_verdict(0.5).startswith("slower")
    assert stats.speed_verdict(1.05) == "about the same (1.05×, within ±10 %)"
    assert stats.speed_verdict(0.95).startswith("about the same")
    with pytest.raises(LabkitError):
        stats.speed_verdict(float("nan"))
