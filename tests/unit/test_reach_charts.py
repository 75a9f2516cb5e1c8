"""The reach dashboard's chart geometry: bar lengths in proportion to the counts (the longest fills the plot),
nothing drawn for zero, one point per month on each line, higher counts higher up."""

from __future__ import annotations

from portal.entrypoints.reach_charts import LABEL_WIDTH, PLOT_WIDTH, bar_chart, line_chart


def test_bars_are_in_proportion_and_grouped_by_value() -> None:
    chart = bar_chart(["Utrecht", "Gelderland"], [[4, 2], [1, 0]])
    widths = [(b.series, b.count, b.width) for b in chart.bars]
    assert widths == [(0, 4, PLOT_WIDTH), (1, 1, PLOT_WIDTH // 4), (0, 2, PLOT_WIDTH // 2), (1, 0, 0)]
    assert all(b.x == LABEL_WIDTH for b in chart.bars)
    ys = [b.y for b in chart.bars]
    assert ys == sorted(ys) and len(set(ys)) == 4  # no two bars on top of each other
    assert [label.text for label in chart.labels] == ["Utrecht", "Gelderland"]
    assert chart.height > ys[-1]


def test_nothing_counted_draws_empty_bars() -> None:
    assert [b.width for b in bar_chart(["MBO"], [[0], [0]]).bars] == [0, 0]


def test_a_line_has_a_point_per_month_and_more_is_higher() -> None:
    chart = line_chart(["december 2026", "maart 2027"], [[5, 0], [1, 3]])
    first, second = chart.lines
    assert [x for x, _y, _n in first.dots] == [x for x, _y, _n in second.dots]
    (x0, y_five, _), (x1, y_zero, _) = first.dots
    assert x0 < x1 and y_five < y_zero  # SVG's y grows downwards
    assert first.points == f"{x0},{y_five} {x1},{y_zero}"
    assert [m.text for m in chart.months] == ["december 2026", "maart 2027"]
    assert [t.text for t in chart.ticks] == ["0", "2", "5"]
