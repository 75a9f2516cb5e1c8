"""The reach dashboard's charts as plain geometry for a Jinja SVG template (no script, no style attribute: the
page's Content-Security-Policy allows neither; colours come from portal.css by class). Bars per value of a
dimension, one bar per figure; a line per figure over the months."""

from __future__ import annotations

from dataclasses import dataclass

BAR = 12  # px, one bar's thickness
GAP = 10  # px between groups
LABEL_WIDTH = 240  # px for the value labels left of the bars
PLOT_WIDTH = 420  # px for the longest bar
COUNT_WIDTH = 50  # px for the count right of a bar


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    series: int
    count: int


@dataclass(frozen=True)
class Label:
    x: int
    y: int
    text: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[Label]


def bar_chart(values: list[str], series: list[list[int]]) -> BarChart:
    """``series[s][v]``: the count of series ``s`` for value ``v``; horizontal bars grouped by value."""
    top = max((max(counts, default=0) for counts in series), default=0) or 1
    bars: list[Bar] = []
    labels: list[Label] = []
    y = GAP
    for v, text in enumerate(values):
        group_top = y
        for s, counts in enumerate(series):
            width = round(PLOT_WIDTH * counts[v] / top)
            bars.append(Bar(LABEL_WIDTH, y, max(width, 1 if counts[v] else 0), BAR, s, counts[v]))
            y += BAR + 2
        labels.append(Label(LABEL_WIDTH - 8, (group_top + y) // 2 + 4, text))
        y += GAP
    return BarChart(LABEL_WIDTH + PLOT_WIDTH + COUNT_WIDTH, y, bars, labels)


@dataclass(frozen=True)
class Line:
    series: int
    points: str  # "x,y x,y ..."
    dots: list[tuple[int, int, int]]  # x, y, count


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    lines: list[Line]
    months: list[Label]
    ticks: list[Label]  # the count axis: 0, half, top
    grid: list[int]  # y of each tick's line
    left: int
    right: int


def line_chart(months: list[str], series: list[list[int]]) -> LineChart:
    left, right, top_margin, plot_height = 60, 70, 15, 220
    plot_width = max(110 * max(len(months) - 1, 1), 480)
    step = plot_width // max(len(months) - 1, 1)
    width = left + right + plot_width
    top = max((max(counts, default=0) for counts in series), default=0) or 1

    def y_of(count: int) -> int:
        return top_margin + plot_height - round(plot_height * count / top)

    def x_of(i: int) -> int:
        return left + (step * i if len(months) > 1 else (width - left - right) // 2)

    lines = [Line(s, " ".join(f"{x_of(i)},{y_of(c)}" for i, c in enumerate(counts)),
                  [(x_of(i), y_of(c), c) for i, c in enumerate(counts)]) for s, counts in enumerate(series)]
    ticks = sorted({0, top // 2, top})
    return LineChart(width, top_margin + plot_height + 40, lines,
                     [Label(x_of(i), top_margin + plot_height + 22, m) for i, m in enumerate(months)],
                     [Label(left - 8, y_of(t) + 4, str(t)) for t in ticks], [y_of(t) for t in ticks],
                     left, width - right)
