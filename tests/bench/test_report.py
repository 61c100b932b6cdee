"""The benchmark's table and ratio code (bench/courierbench/report.py) and its --order parsing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from courierbench.plugins import parse_order
from courierbench.report import Row, fmt, pair_ratio, ratio, render_table


def test_ratio_and_fmt() -> None:
    assert ratio(24, 4) == "6.00x"
    assert ratio(None, 4) == ratio(4, None) == ratio(4, 0) == "-"
    assert fmt(None) == "-"
    assert fmt(1.234, 1) == "1.2"


def test_pair_ratio_reads_as_times_better_for_the_second() -> None:
    calls = Row("calls", {"upstream": 24, "cold": 4, "warm": 2})
    assert pair_ratio(calls, "upstream", "cold") == "6.00x"
    assert pair_ratio(calls, "cold", "warm") == "2.00x"
    rate = Row("lifecycles/s", {"upstream": 1.0, "warm": 12.0}, higher_better=True)
    assert pair_ratio(rate, "upstream", "warm") == "12.00x"
    assert pair_ratio(Row("n", {"upstream": 3, "warm": 3}, ratios=False), "upstream", "warm") == "-"


def test_render_table_columns_follow_the_plugins_present() -> None:
    rows = [Row("setup p50 (ms)", {"cold": 200.0, "upstream": 1500.0}, target="<= 75")]
    head, rule, line = render_table(rows, ["upstream", "cold"])
    assert "Courier cold" in head and "kuryr 18" in head and "Courier warm" not in head
    assert "kuryr/cold" in head and "cold/warm" not in head and "kuryr/warm" not in head
    assert len(rule) == len(head)
    assert line.split()[-5:] == ["200", "1500", "7.50x", "<=", "75"]


def test_render_table_three_plugins() -> None:
    rows = [Row("x", {"cold": 2.0, "warm": 1.0, "upstream": 4.0}, 1)]
    head, _, line = render_table(rows, ["cold", "warm", "upstream"])
    assert head.index("Courier cold") < head.index("Courier warm") < head.index("kuryr 18")
    assert line.split()[1:] == ["2.0", "1.0", "4.0", "2.00x", "4.00x", "2.00x"]


@pytest.mark.parametrize(("text", "keys"), [
    ("cold,warm,upstream", ["cold", "warm", "upstream"]),
    ("courier,upstream", ["cold", "warm", "upstream"]),
    ("upstream, cold", ["upstream", "cold"]),
    ("kuryr", ["upstream"]),
])
def test_parse_order(text: str, keys: list[str]) -> None:
    assert parse_order(text) == keys


@pytest.mark.parametrize("text", ["", "cold,cold", "courier,warm", "bridge"])
def test_parse_order_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_order(text)
