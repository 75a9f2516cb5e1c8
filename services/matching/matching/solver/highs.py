"""HiGHS in bulk, shared by the array paths: a model as (row, column, coefficient) triplets with its
bounds (``Lp``), handed to HiGHS in one call (``pass_model``), a matching to start from (``set_start``),
and the callback that reports progress and stops a run when asked (``watch_highs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .arrays import ArrayModel
from .common import Progress, finite

if TYPE_CHECKING:
    from .network import PairRows


@dataclass
class Lp:
    """A model for HiGHS: rows as triplets, columns with bounds; ``integer`` marks the binaries."""

    n_cols: int
    row: Any
    col: Any
    coef: Any
    lower: Any
    upper: Any
    integer: bool
    blocks: list[int] | None = None  # entries per family in turn, where known (see PairRows.of)
    pairs: PairRows | None = None  # the columns' rows as lines, where built with the model (network_pairs)


def full_model(model: ArrayModel) -> Lp:
    """The whole array model as a MIP."""
    return Lp(model.n_cols, model.row, model.col, model.coef, model.row_lower, model.row_upper, True)


def pass_model(highs: Any, lp: Lp, costs: Any) -> None:
    """Hand ``lp`` to ``highs`` (row-wise, maximising ``costs``), replacing what it held."""
    import highspy
    import numpy as np

    order = np.argsort(lp.row, kind="stable")
    n_rows = len(lp.lower)
    starts = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(lp.row, minlength=n_rows), out=starts[1:])
    inf = highspy.kHighsInf
    integrality = np.full(lp.n_cols, 1 if lp.integer else 0, dtype=np.int32)
    highs.passModel(lp.n_cols, n_rows, len(lp.row), int(highspy.MatrixFormat.kRowwise),
                    int(highspy.ObjSense.kMaximize), 0.0, np.ascontiguousarray(costs[:lp.n_cols], dtype=np.float64),
                    np.zeros(lp.n_cols), np.ones(lp.n_cols),
                    np.clip(lp.lower, -inf, inf), np.clip(lp.upper, -inf, inf),
                    starts[:-1], lp.col[order].astype(np.int32), lp.coef[order].astype(np.float64), integrality)


def watch_highs(highs: Any, progress: Progress) -> None:
    """Let HiGHS report improving solutions into ``progress`` and stop when it is asked to."""
    import highspy

    kinds = highspy.cb.HighsCallbackType

    def callback(kind: Any, _message: str, data_out: Any, data_in: Any, _user_data: Any) -> None:
        if kind == kinds.kCallbackMipImprovingSolution:
            progress.best = finite(data_out.objective_function_value)  # maximised as it is
            progress.gap = finite(data_out.mip_gap)
        elif kind == kinds.kCallbackMipInterrupt and progress.stop.is_set():
            data_in.user_interrupt = True

    highs.setCallback(callback, None)
    highs.startCallback(kinds.kCallbackMipImprovingSolution)
    highs.startCallback(kinds.kCallbackMipInterrupt)


def set_start(highs: Any, values: Any) -> None:
    """Start the next run from ``values`` (the model's column values)."""
    import highspy

    start = highspy.HighsSolution()
    start.col_value = values.tolist()
    start.value_valid = True
    highs.setSolution(start)

