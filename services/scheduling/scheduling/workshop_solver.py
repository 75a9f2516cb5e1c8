"""The workshop planner at real size: the same plans as the plain model (``domain.workshops``' rows), on
a formulation whose only integer decisions are which sessions run, solved by HiGHS in memory from a
greedy start.

    maximise   sum_s P y_s  +  sum_(i,s) w_is x_is
    y_s in {0,1}              a session s = (theme, venue, slot) runs
    f_(p,t,k) in [0,1]        facilitator p leads a session of theme t in slot k (aggregated over venues)
    x_is in [0,1]             interest i is seated in session s ({0,1} where a firm_once row holds it)
    sum_(s of t in k) y_s <= sum_p f_(p,t,k)      every running session has a facilitator
    sum_t f_(p,t,k) <= 1                          a facilitator leads one session per slot
    sum_(s in room r, slot k) y_s <= 1            a room holds one session per slot
    sum_(s at location l on day d) y_s <= cap     location/day cap
    sum_(s of theme t) y_s <= wanted_t            sessions wanted per theme
    x_is <= y_s,  min y_s <= sum_i x_is <= capacity_s y_s
    sum_s x_is <= 1;  sum_(i of firm f, s in slot k) x_is <= 1   (only where the firm has several themes)

Why it holds: for whole y the facilitator rows are a transportation problem between a slot's facilitators
and its themes (integral: some 0/1 f exists whenever a fractional one does; which facilitator leads which
venue's session is then a bipartite matching, done after the solve), and the seat rows without the firm
rows are a transportation problem between interests and running sessions with integral bounds (integral
too). So only y, and the seats of firms with several themes, need to be integer: HiGHS branches on a few
thousand session binaries instead of every (facilitator, session) and (interest, session) pair. The greedy
plan (open the session that seats the most value, repeatedly) is improved per theme by a local search over
how many sessions run in each cluster (theme, place, day), realised as sessions and seated exactly; that
plan is handed to HiGHS as its first incumbent.

Where the gap is (1,000 interests of the benchmark, seed 1; measured 5 December 2026): each theme's
relaxation is a maximum-coverage problem (9 to 12 sessions among about 200 clusters for 140 to 190 firms)
whose LP is 3-5% above its optimum; HiGHS closes it only by branching. Solved alone to 1%, the six themes
took 17.5, 24.5, 14.4, 23.2, 17.8 and 6.2 s of CPU (104 s together; data_automation, run on, proved its
optimum, 11,538.0, 0.8% above the local search's counts). The local search gets within about 1% of the
themes' plans in under a second of CPU per theme; the MIPs' plans are a little better, and realising the
themes' counts as sessions lost nothing in the runs measured. Summed, those six theme plans (89,530) are
0.94% below the six bounds (90,383): the goal (within 1% in 60 s) needs the proofs' 104 s of CPU, about
52 s on the two threads here, so it is within reach only on a machine not shared with other work; at a
load average of 8 the run gets about a third of that CPU and ends at about 3.3%. Branching on pseudo-costs
from the first observation (``THEME_OPTIONS``) cut those proofs to about 71 s of CPU (same session, side by
side: see benchmarks/README.md), about 36 s of each of the two threads: at a load average of 2 the planner
ended within 1% (0.98%) in 42.8 s; with about 50 s of CPU in the minute it ends near 2%.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from . import solver_watch
from .domain import workshops as ws

INTEGRALITY_TOLERANCE = 1e-6
PARALLEL_THEMES = 2  # theme relaxations solved at once, each by one HiGHS thread: the machine's two cores
SEARCH_SHARE = 0.3  # of the time limit: the local search over every theme's clusters ends by then at the latest
STALE_TRIES = 60  # restarts of a theme's local search in a row without a gain that end it
THEMES_SHARE = 0.85  # the themes' relaxations end by then; the rest realises, seats and checks the plan (at
# 1,000 interests, with 0.8, the planner ended after 49.8 to 52.3 s of a 60 s limit, about 8 s unused; with
# 0.88 it ended after 59.2 s at a load average of 7: the rest took 6 s there)
# HiGHS options of the themes' relaxations: branching on a session's pseudo-cost from its first observation
# (default 8: strong branching until then). At 1,000 interests it proved ai in 8.7 s of CPU instead of 16.2 s,
# data_automation in 12.0 s instead of 14.1 s and webshop in 6.6 s instead of 7.3 s (run side by side, the
# same bounds within 0.03%)
THEME_OPTIONS: dict[str, int | float | bool] = {"mip_pscost_minreliable": 0}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Solved:
    status: str  # optimal, feasible (time limit), not_solved
    plan: ws.Plan
    bound: float | None  # the solver's dual bound on the objective (of this formulation), when known
    gap: float | None
    variables: int
    constraints: int
    build_seconds: float
    solve_seconds: float


# ---- the greedy plan ---------------------------------------------------------------------------


def greedy(problem: ws.Problem, c: ws.Candidates | None = None, keep: ws.Plan | None = None) -> ws.Plan:
    """Open, one at a time, the session whose best seats (and its running bonus) are worth the most, with a
    free room, a free facilitator of its theme, room under the location/day cap and the theme's wanted
    count; seat the best of its attendees (firms free in that slot), and repeat while a session gains."""
    c = c or ws.candidates(problem)
    terms = ws.objective_terms(problem, c, keep)
    staff: dict[ws.Session, list[str]] = defaultdict(list)
    for st in c.staffings:
        staff[st.session].append(st.facilitator_id)
    attendees: dict[ws.Session, list[tuple[float, str]]] = defaultdict(list)
    for seat in c.seats:
        attendees[seat.session].append((terms[seat], seat.interest_id))
    for found in attendees.values():
        found.sort(key=lambda t: (-t[0], t[1]))
    firm = {i.interest_id: i.firm_id for i in problem.interests}
    location = {s: ws.location_of(problem, s) for s in staff}
    minimum = max(problem.min_participants, 1)
    room_busy: set[tuple[str, ws.Slot]] = set()
    staff_busy: set[tuple[str, ws.Slot]] = set()
    firm_busy: set[tuple[str, ws.Slot]] = set()
    seated: set[str] = set()
    per_place_day: dict[tuple[str, object], int] = defaultdict(int)
    per_theme: dict[str, int] = defaultdict(int)

    def open_gain(s: ws.Session) -> tuple[float, list[str], str | None]:
        cap = problem.max_sessions_per_location_day
        if s.venue != ws.ONLINE and ((s.venue, s.slot) in room_busy
                                     or per_place_day[(location[s], s.slot.day)] >= cap):
            return -1.0, [], None
        if per_theme[s.theme] >= problem.wanted(s.theme):
            return -1.0, [], None
        free = [f for f in staff[s] if (f, s.slot) not in staff_busy]
        if not free:
            return -1.0, [], None
        kept = [f for f in free if ws.Staffing(s, f) in (keep.staffings if keep else ())]
        who = kept[0] if kept else free[0]
        chosen: list[str] = []
        value = terms[ws.Staffing(s, who)]
        for worth, interest_id in attendees[s]:
            if len(chosen) == ws.capacity_of(problem, s):
                break
            if interest_id in seated or (firm[interest_id], s.slot) in firm_busy:
                continue
            chosen.append(interest_id)
            value += worth
        if len(chosen) < minimum:
            return -1.0, [], None
        return value, chosen, who

    heap = [(-open_gain(s)[0], s) for s in sorted(staff)]
    heapq.heapify(heap)
    staffings: set[ws.Staffing] = set()
    seats: set[ws.Seat] = set()
    while heap:
        _, s = heapq.heappop(heap)
        value, chosen, who = open_gain(s)
        if value <= 0 or who is None:
            continue
        if heap and -heap[0][0] > value + 1e-9:
            heapq.heappush(heap, (-value, s))  # another may gain more now: look again later
            continue
        staffings.add(ws.Staffing(s, who))
        staff_busy.add((who, s.slot))
        if s.venue != ws.ONLINE:
            room_busy.add((s.venue, s.slot))
            per_place_day[(location[s], s.slot.day)] += 1
        per_theme[s.theme] += 1
        for interest_id in chosen:
            seats.add(ws.Seat(interest_id, s))
            seated.add(interest_id)
            firm_busy.add((firm[interest_id], s.slot))
    return ws.Plan(frozenset(staffings), frozenset(seats))


# ---- a local search over each theme's clusters ----------------------------------------------------

Cluster = tuple[str, str, object]  # theme, place (or online), day: what an entrepreneur's seat depends on


@dataclass(frozen=True)
class _Clusters:
    """One theme seen as clusters: the capacities of a cluster's sessions (largest first, at most as many
    as can run there on one day), what each interest's seat is worth in each cluster it can attend (its best
    session there), and the clusters each interest can attend, best first."""

    caps: dict[Cluster, list[float]]
    worth: dict[Cluster, dict[str, float]]
    options: dict[str, list[Cluster]]
    bonus: dict[Cluster, float]
    minimum: int


def _theme_clusters(problem: ws.Problem, c: ws.Candidates, terms: dict[ws.Key, float]) -> _Clusters:
    members: dict[Cluster, list[ws.Session]] = defaultdict(list)
    for s in sorted({st.session for st in c.staffings}):
        members[_cluster(problem, s)].append(s)
    caps: dict[Cluster, list[float]] = {}
    bonus: dict[Cluster, float] = defaultdict(float)
    for k, found in members.items():
        most = len(found) if k[1] == ws.ONLINE else min(len(found), problem.max_sessions_per_location_day)
        caps[k] = sorted((float(ws.capacity_of(problem, s)) for s in found), reverse=True)[:most]
    for st in c.staffings:
        k = _cluster(problem, st.session)
        bonus[k] = max(bonus[k], terms[st])
    worth: dict[Cluster, dict[str, float]] = defaultdict(dict)
    for seat_ in c.seats:
        k = _cluster(problem, seat_.session)
        worth[k][seat_.interest_id] = max(worth[k].get(seat_.interest_id, -INF), terms[seat_])
    options: dict[str, list[Cluster]] = defaultdict(list)
    for k, found_ in sorted(worth.items(), key=lambda kv: str(kv[0])):
        for interest_id in found_:
            options[interest_id].append(k)
    for interest_id, ks in options.items():
        ks.sort(key=lambda k: -worth[k][interest_id])
    return _Clusters(caps, dict(worth), dict(options), dict(bonus), max(problem.min_participants, 1))


def _cover(tc: _Clusters, counts: dict[Cluster, int]) -> tuple[float, dict[str, Cluster]]:
    """The value of running ``counts`` sessions per cluster: the most entrepreneurs seated (augmenting
    paths over the clusters' capacities, the most valuable first), each at its seat's worth there, and the
    running bonus; -inf when a cluster would seat fewer than the minimum per session."""
    room = {k: sum(tc.caps[k][:n]) for k, n in counts.items() if n > 0}
    held: dict[Cluster, list[str]] = {k: [] for k in room}
    where: dict[str, Cluster] = {}

    def augment(i: str, seen: set[Cluster]) -> bool:
        for k in tc.options[i]:
            if k in room and k not in seen and len(held[k]) < room[k]:
                seen.add(k)
                held[k].append(i)
                where[i] = k
                return True
        for k in tc.options[i]:
            if k in room and k not in seen:
                seen.add(k)
                for j in list(held[k]):
                    if augment(j, seen):
                        held[k].remove(j)
                        held[k].append(i)
                        where[i] = k
                        return True
        return False

    reachable = {i for k in room for i in tc.worth.get(k, {})}
    for i in sorted(reachable, key=lambda i: (-tc.worth[tc.options[i][0]][i], i)):
        augment(i, set())
    if any(len(held[k]) < tc.minimum * counts[k] for k in room):
        return -INF, where
    value = sum(tc.worth[k][i] for i, k in where.items()) + sum(tc.bonus[k] * counts[k] for k in room)
    return value, where


def improve_clusters(tc: _Clusters, counts: dict[Cluster, int], wanted: int, deadline: float
                     ) -> dict[Cluster, int]:
    """Local search from ``counts``: add a session where one more gains (while fewer than ``wanted`` run),
    or move one session to another cluster, the moves ranked by the entrepreneurs left unseated that the
    other cluster could seat; the first move that gains is taken, until none gains or time is up."""
    counts = {k: n for k, n in counts.items() if n > 0}
    best, _ = _cover(tc, counts)
    while time.perf_counter() < deadline and not solver_watch.stopped():
        moved = False
        outs: list[Cluster | None] = [None] if sum(counts.values()) < wanted else []
        outs += sorted(counts, key=str)
        for out in outs:
            trial = dict(counts)
            if out is not None:
                trial[out] -= 1
            _, where = _cover(tc, trial)
            gain: dict[Cluster, float] = defaultdict(float)
            for i, ks in tc.options.items():
                if i not in where:
                    for k in ks:
                        if trial.get(k, 0) < len(tc.caps[k]) and k != out:
                            gain[k] += tc.worth[k][i]
            for k in sorted(gain, key=lambda k: (-min(gain[k], 100.0 * tc.caps[k][trial.get(k, 0)]), str(k)))[:3]:
                tried = dict(trial)
                tried[k] = tried.get(k, 0) + 1
                value, _ = _cover(tc, tried)
                if value > best + 1e-6:
                    best, counts, moved = value, {q: n for q, n in tried.items() if n > 0}, True
                    break
            if moved or time.perf_counter() >= deadline:
                break
        if not moved:
            break
    return counts


def search_clusters(tc: _Clusters, counts: dict[Cluster, int], wanted: int, deadline: float,
                    seed: int = 0) -> dict[Cluster, int]:
    """Iterated local search: ``improve_clusters``, then, while time is left, take two or three sessions
    of the best counts away at random (seeded: the same instance gives the same plan) and improve again,
    keeping the best counts found; STALE_TRIES restarts in a row that gain nothing end it early (at 1,000
    interests the last gain came by the 25th restart, in a third of a second of CPU, and over 100 more gained
    nothing; at 3,000 restarts still gained at the 25th, 4 s of CPU in)."""
    import random

    rng = random.Random(seed)
    best = improve_clusters(tc, counts, wanted, deadline)
    value, _ = _cover(tc, best)
    tries = gained = 0
    while (time.perf_counter() < deadline and tries < 1000 and tries - gained < STALE_TRIES
           and not solver_watch.stopped()):
        tries += 1
        trial = dict(best)
        chosen = [k for k, n in sorted(trial.items(), key=lambda kv: str(kv[0])) for _ in range(n)]
        for k in rng.sample(chosen, min(len(chosen), rng.choice((2, 3)))):
            trial[k] -= 1
        trial = improve_clusters(tc, trial, wanted, deadline)
        found, _ = _cover(tc, trial)
        if found > value + 1e-6:
            best, value, gained = trial, found, tries
    return best


def realise(problem: ws.Problem, c: ws.Candidates, counts: dict[Cluster, int], keep: ws.Plan | None = None
            ) -> list[ws.Session]:
    """Sessions for the clusters' counts: per cluster (the scarcest first) its largest free rooms in the
    cluster's slots, each with a facilitator of the theme free then, at most the cap per location and day;
    a count that finds no such session is left out."""
    staff: dict[ws.Session, list[str]] = defaultdict(list)
    members: dict[Cluster, list[ws.Session]] = defaultdict(list)
    for st in c.staffings:
        if not staff[st.session]:
            members[_cluster(problem, st.session)].append(st.session)
        staff[st.session].append(st.facilitator_id)
    kept = {st.session for st in (keep.staffings if keep else ())}
    for found in members.values():
        found.sort(key=lambda s: (s not in kept, -ws.capacity_of(problem, s), s))
    room_busy: set[tuple[str, ws.Slot]] = set()
    staff_busy: set[tuple[str, ws.Slot]] = set()
    per_place_day: dict[tuple[str, object], int] = defaultdict(int)
    running: list[ws.Session] = []
    for k in sorted((k for k, n in counts.items() if n > 0), key=lambda k: (len(members[k]), str(k))):
        for _ in range(counts[k]):
            for s in members[k]:
                place = ws.location_of(problem, s)
                if s.venue != ws.ONLINE and ((s.venue, s.slot) in room_busy
                                             or per_place_day[(place, s.slot.day)]
                                             >= problem.max_sessions_per_location_day):
                    continue
                if s in running:
                    continue
                free = [f for f in staff[s] if (f, s.slot) not in staff_busy]
                if not free:
                    continue
                staff_busy.add((free[0], s.slot))
                if s.venue != ws.ONLINE:
                    room_busy.add((s.venue, s.slot))
                    per_place_day[(place, s.slot.day)] += 1
                running.append(s)
                break
    return running


def counts_of(problem: ws.Problem, plan: ws.Plan) -> dict[Cluster, int]:
    out: dict[Cluster, int] = defaultdict(int)
    for st in plan.staffings:
        out[_cluster(problem, st.session)] += 1
    return dict(out)


# ---- facilitators to sessions, after the solve -------------------------------------------------


def assign_facilitators(problem: ws.Problem, c: ws.Candidates, running: list[ws.Session],
                        keep: ws.Plan | None = None) -> dict[ws.Session, str]:
    """One facilitator per running session, none in two sessions of a slot: a bipartite matching per slot
    (augmenting paths), each kept session starting with its current facilitator."""
    staff: dict[ws.Session, list[str]] = defaultdict(list)
    for st in c.staffings:
        staff[st.session].append(st.facilitator_id)
    kept = {st.session: st.facilitator_id for st in (keep.staffings if keep else ())}
    by_slot: dict[ws.Slot, list[ws.Session]] = defaultdict(list)
    for s in running:
        by_slot[s.slot].append(s)
    out: dict[ws.Session, str] = {}
    for sessions in by_slot.values():
        holder: dict[str, ws.Session] = {}

        def augment(s: ws.Session, seen: set[str], holder: dict[str, ws.Session] = holder) -> bool:
            for f in staff[s]:
                if f in seen:
                    continue
                seen.add(f)
                if f not in holder or augment(holder[f], seen):
                    holder[f] = s
                    return True
            return False

        for s in sessions:
            f = kept.get(s)
            if f is not None and f in staff[s] and f not in holder:
                holder[f] = s
        for s in sorted(sessions):
            if s not in holder.values():
                augment(s, set())
        out.update({s: f for f, s in holder.items()})
    return out


# ---- the models ----------------------------------------------------------------------------------


class _Rows:
    """A row-wise sparse matrix being built, with its row bounds."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.starts: list[int] = [0]
        self.index: list[int] = []
        self.value: list[float] = []

    def add(self, cols: list[int], coefs: list[float], lo: float, hi: float) -> None:
        self.index.extend(cols)
        self.value.extend(coefs)
        self.starts.append(len(self.index))
        self.lower.append(lo)
        self.upper.append(hi)

    def at_most(self, cols: list[int], rhs: float) -> None:
        if len(cols) > rhs:
            self.add(cols, [1.0] * len(cols), -INF, rhs)

    def __len__(self) -> int:
        return len(self.lower)


INF = float("inf")


@dataclass
class _ThemesWatch:
    """The watch of the themes' MIP threads (``solver_watch.Watch``)."""

    stop: threading.Event
    time_limit_reached: bool


@dataclass
class _Run:
    values: list[float] | None
    optimal: bool
    bound: float | None
    seconds: float
    counts: dict[Cluster, int] | None = None  # a theme relaxation's sessions per cluster, when it found some


def _run(rows: _Rows, cost: list[float], integer: list[int], time_limit: float, gap: float,
         start: list[float] | None, threads: int | None,
         options: dict[str, int | float | bool] | None = None) -> _Run:
    import highspy
    import numpy as np

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(os.environ.get("WERKPLAATS_SOLVER_LOG")))
    h.setOptionValue("time_limit", max(float(time_limit), 0.5))
    h.setOptionValue("mip_rel_gap", gap)
    h.setOptionValue("random_seed", 0)
    if threads is not None:
        h.setOptionValue("threads", threads)
    for name, value in (options or {}).items():
        h.setOptionValue(name, value)
    n = len(cost)
    inf = highspy.kHighsInf
    h.passModel(n, len(rows), len(rows.index), int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMaximize),
                0.0, np.asarray(cost, dtype=np.float64), np.zeros(n), np.ones(n),
                np.clip(np.asarray(rows.lower, dtype=np.float64), -inf, inf),
                np.clip(np.asarray(rows.upper, dtype=np.float64), -inf, inf),
                np.asarray(rows.starts[:-1], dtype=np.int32), np.asarray(rows.index, dtype=np.int32),
                np.asarray(rows.value, dtype=np.float64), np.asarray(integer, dtype=np.int32))
    if start is not None:
        incumbent = highspy.HighsSolution()
        incumbent.col_value = start
        incumbent.value_valid = True
        h.setSolution(incumbent)
    solver_watch.attach(h)
    began = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - began
    solver_watch.note(h)
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return _Run(None, False, None, seconds)
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    bound = float(info.mip_dual_bound) if any(integer) else float(info.objective_function_value)
    return _Run(list(h.getSolution().col_value), optimal, bound if np.isfinite(bound) else None, seconds)


def _cluster(problem: ws.Problem, s: ws.Session) -> tuple[str, str, object]:
    """What an entrepreneur's seat depends on: the theme, the place (or online) and the day."""
    return s.theme, ws.location_of(problem, s), s.slot.day


def choose_sessions(problem: ws.Problem, c: ws.Candidates, terms: dict[ws.Key, float], keep: ws.Plan | None,
                    time_limit: float, gap: float, first: ws.Plan | None, threads: int | None
                    ) -> tuple[list[ws.Session], _Run, int, int]:
    """Which sessions run: y per session, the facilitators per (theme, slot), and seats per interest and
    cluster (theme, place, day: its sessions are alike to the entrepreneur), without the firm_once rows (a
    relaxation: its bound holds for the whole problem; every seat's value is its best in the cluster)."""
    sessions = sorted({st.session for st in c.staffings})
    y = {s: k for k, s in enumerate(sessions)}
    kept_sessions = set(keep.sessions()) if keep else set()
    cost = [ws.UNSCHEDULED_PENALTY + (ws.KEEP_SESSION_WEIGHT if s in kept_sessions else 0.0) for s in sessions]
    fac: dict[tuple[str, str, ws.Slot], int] = {}
    for st in c.staffings:
        key = (st.facilitator_id, st.session.theme, st.session.slot)
        if key not in fac:
            fac[key] = len(cost)
            cost.append(0.0)
    members: dict[tuple[str, str, object], list[ws.Session]] = defaultdict(list)
    for s in sessions:
        members[_cluster(problem, s)].append(s)
    firm_once_rows = list(ws.firm_once(problem, c))
    # an interest with a seat in a firm_once row keeps all its seats per session (a cluster seat could
    # be taken up by the session that row is about)
    held = {st.interest_id for r in firm_once_rows for st, _ in r.terms if isinstance(st, ws.Seat)}
    exact = {st for st in c.seats if st.interest_id in held}
    x: dict[tuple[str, tuple[str, str, object]], int] = {}
    xs: dict[ws.Seat, int] = {}  # seats held by a firm_once row stay per session
    for seat in sorted(c.seats):
        if seat in exact:
            xs[seat] = len(cost)
            cost.append(terms[seat])
            continue
        cell = (seat.interest_id, _cluster(problem, seat.session))
        if cell not in x:
            x[cell] = len(cost)
            cost.append(terms[seat])
        else:
            cost[x[cell]] = max(cost[x[cell]], terms[seat])
    integer = [1] * len(sessions) + [0] * (len(cost) - len(sessions))
    for col in xs.values():
        integer[col] = 1
    rows = _Rows()
    room_slot: dict[object, list[int]] = defaultdict(list)
    place_day: dict[object, list[int]] = defaultdict(list)
    theme: dict[str, list[int]] = defaultdict(list)
    theme_slot: dict[tuple[str, ws.Slot], list[int]] = defaultdict(list)
    for s, k in y.items():
        if s.venue != ws.ONLINE:
            room_slot[(s.venue, s.slot)].append(k)
            place_day[(ws.location_of(problem, s), s.slot.day)].append(k)
        theme[s.theme].append(k)
        theme_slot[(s.theme, s.slot)].append(k)
    for cols in room_slot.values():
        rows.at_most(cols, 1)
    for cols in place_day.values():
        rows.at_most(cols, problem.max_sessions_per_location_day)
    for t, cols in theme.items():
        rows.at_most(cols, problem.wanted(t))
    fac_slot: dict[tuple[str, ws.Slot], list[int]] = defaultdict(list)
    theme_slot_fac: dict[tuple[str, ws.Slot], list[int]] = defaultdict(list)
    for (f, t, slot), col in fac.items():
        fac_slot[(f, slot)].append(col)
        theme_slot_fac[(t, slot)].append(col)
    for cols in fac_slot.values():
        rows.at_most(cols, 1)
    for pair, cols in theme_slot.items():
        staff = theme_slot_fac[pair]
        rows.add(cols + staff, [1.0] * len(cols) + [-1.0] * len(staff), -INF, 0.0)
    by_cluster: dict[tuple[str, str, object], list[int]] = defaultdict(list)
    by_interest: dict[str, list[int]] = defaultdict(list)
    for (interest_id, cluster), col in x.items():
        running = [y[s] for s in members[cluster]]
        rows.add([col, *running], [1.0] + [-1.0] * len(running), -INF, 0.0)
        by_cluster[cluster].append(col)
        by_interest[interest_id].append(col)
    by_session: dict[ws.Session, list[int]] = defaultdict(list)
    for seat_, col in xs.items():
        rows.add([col, y[seat_.session]], [1.0, -1.0], -INF, 0.0)
        by_cluster[_cluster(problem, seat_.session)].append(col)
        by_interest[seat_.interest_id].append(col)
        by_session[seat_.session].append(col)
    for s_, cols in by_session.items():
        cap_ = float(ws.capacity_of(problem, s_))
        if len(cols) > cap_:
            rows.add([*cols, y[s_]], [1.0] * len(cols) + [-cap_], -INF, 0.0)
    for r in firm_once_rows:
        held_cols = [xs[st] for st, _ in r.terms if isinstance(st, ws.Seat)]
        rows.add(held_cols, [1.0] * len(held_cols), -INF, r.rhs)
    minimum = float(problem.min_participants)
    for cluster, cols in by_cluster.items():
        running = [y[s] for s in members[cluster]]
        caps = [float(ws.capacity_of(problem, s)) for s in members[cluster]]
        if len(cols) > min(caps):
            rows.add(cols + running, [1.0] * len(cols) + [-cap for cap in caps], -INF, 0.0)
        if minimum > 0:
            rows.add(cols + running, [1.0] * len(cols) + [-minimum] * len(running), 0.0, INF)
    for cols in by_interest.values():
        rows.at_most(cols, 1)
    start = None
    if first is not None:
        start = [0.0] * len(cost)
        for st in first.staffings:
            start[y[st.session]] = 1.0
            start[fac[(st.facilitator_id, st.session.theme, st.session.slot)]] = 1.0
        for seat in first.seats:
            if seat in xs:
                start[xs[seat]] = 1.0
            else:
                start[x[(seat.interest_id, _cluster(problem, seat.session))]] = 1.0
    result = _run(rows, cost, integer, time_limit, gap, start, threads)
    running_sessions = [] if result.values is None else [s for s in sessions if result.values[y[s]] > 0.5]
    return running_sessions, result, len(cost), len(rows)


def seat(problem: ws.Problem, c: ws.Candidates, terms: dict[ws.Key, float], running: list[ws.Session],
         time_limit: float, gap: float, threads: int | None) -> tuple[set[ws.Seat], _Run]:
    """The best seating in these running sessions, every seat rule included (the firm_once rows too):
    a small model, integer only where a firm_once row holds a seat."""
    open_ = set(running)
    seats = [st for st in sorted(c.seats) if st.session in open_]
    x = {st: k for k, st in enumerate(seats)}
    cost = [terms[st] for st in seats]
    integer = [0] * len(cost)
    rows = _Rows()
    by_session: dict[ws.Session, list[int]] = defaultdict(list)
    by_interest: dict[str, list[int]] = defaultdict(list)
    for st, col in x.items():
        by_session[st.session].append(col)
        by_interest[st.interest_id].append(col)
    for s in running:
        cols = by_session[s]
        rows.at_most(cols, ws.capacity_of(problem, s))
        if problem.min_participants > 0:
            rows.add(cols, [1.0] * len(cols), float(problem.min_participants), INF)
    for cols in by_interest.values():
        rows.at_most(cols, 1)
    for r in ws.firm_once(problem, ws.Candidates(c.staffings, {st: 0.0 for st in seats})):
        cols = [x[k] for k, _ in r.terms if isinstance(k, ws.Seat)]
        rows.at_most(cols, r.rhs)
        for col in cols:
            integer[col] = 1
    result = _run(rows, cost, integer, time_limit, gap, None, threads)
    if result.values is None:
        return set(), result
    return {st for st, col in x.items() if result.values[col] > 1 - INTEGRALITY_TOLERANCE}, result


def value_of(plan: ws.Plan, terms: dict[ws.Key, float]) -> float:
    return sum(terms.get(k, 0.0) for k in plan.values())


def theme_relaxation(problem: ws.Problem, c: ws.Candidates, terms: dict[ws.Key, float], keep: ws.Plan | None,
                     time_limit: float, gap: float, first: ws.Plan | None, threads: int | None,
                     start_counts: tuple[dict[Cluster, int], dict[str, Cluster]] | None = None
                     ) -> tuple[set[tuple[str, str, object]], _Run]:
    """One theme's sessions as counts per cluster (place and day), a relaxation without symmetry: the j-th
    session of a cluster (z_kj, z_k1 >= z_k2 >= ...) brings the j-th largest capacity of the cluster's
    candidate sessions; rooms and facilitators per slot and firm_once are left out, so its optimum bounds
    what the theme can gain in any plan. Returns the clusters it uses and its run."""
    sessions = sorted({st.session for st in c.staffings})
    members: dict[tuple[str, str, object], list[ws.Session]] = defaultdict(list)
    for s in sessions:
        members[_cluster(problem, s)].append(s)
    kept = set(keep.sessions()) if keep else set()
    cost: list[float] = []
    z: dict[tuple[str, str, object], list[int]] = {}
    caps: dict[tuple[str, str, object], list[float]] = {}
    for k, found in sorted(members.items(), key=lambda kv: str(kv[0])):
        most = len(found) if k[1] == ws.ONLINE else min(len(found), problem.max_sessions_per_location_day)
        caps[k] = sorted((float(ws.capacity_of(problem, s)) for s in found), reverse=True)[:most]
        bonus = ws.KEEP_SESSION_WEIGHT if any(s in kept for s in found) else 0.0
        z[k] = list(range(len(cost), len(cost) + most))
        cost.extend([ws.UNSCHEDULED_PENALTY + bonus] * most)
    n_z = len(cost)
    x: dict[tuple[str, tuple[str, str, object]], int] = {}
    for seat_ in sorted(c.seats):
        key = (seat_.interest_id, _cluster(problem, seat_.session))
        if key not in x:
            x[key] = len(cost)
            cost.append(terms[seat_])
        else:
            cost[x[key]] = max(cost[x[key]], terms[seat_])
    integer = [1] * n_z + [0] * (len(cost) - n_z)
    rows = _Rows()
    for cols in z.values():
        for a, b in itertools.pairwise(cols):
            rows.add([b, a], [1.0, -1.0], -INF, 0.0)
    themes = {s.theme for s in sessions}
    for t in themes:
        rows.at_most([col for k, cols in z.items() if k[0] == t for col in cols], problem.wanted(t))
    by_cluster: dict[tuple[str, str, object], list[int]] = defaultdict(list)
    by_interest: dict[str, list[int]] = defaultdict(list)
    for (interest_id, k), col in x.items():
        rows.add([col, z[k][0]], [1.0, -1.0], -INF, 0.0)
        by_cluster[k].append(col)
        by_interest[interest_id].append(col)
    for k, cols in by_cluster.items():
        if len(cols) > caps[k][-1]:
            rows.add(cols + z[k], [1.0] * len(cols) + [-cap for cap in caps[k]], -INF, 0.0)
        if problem.min_participants > 0:
            rows.add(cols + z[k], [1.0] * len(cols) + [-float(problem.min_participants)] * len(z[k]), 0.0, INF)
    for cols in by_interest.values():
        rows.at_most(cols, 1)
    start = None
    if start_counts is not None:  # a local search's counts per cluster and where each entrepreneur sits
        start = [0.0] * len(cost)
        for k, n in start_counts[0].items():
            for col in z.get(k, [])[:n]:
                start[col] = 1.0
        for interest_id, k in start_counts[1].items():
            if (interest_id, k) in x:
                start[x[(interest_id, k)]] = 1.0
    elif first is not None:
        start = [0.0] * len(cost)
        count: dict[tuple[str, str, object], int] = defaultdict(int)
        for st in first.staffings:
            count[_cluster(problem, st.session)] += 1
        for k, n in count.items():
            for col in z[k][:n]:
                start[col] = 1.0
        for seat_ in first.seats:
            start[x[(seat_.interest_id, _cluster(problem, seat_.session))]] = 1.0
    result = _run(rows, cost, integer, time_limit, gap, start, threads, THEME_OPTIONS)
    used = set() if result.values is None else {k for k, cols in z.items() if result.values[cols[0]] > 0.5}
    if result.values is not None:
        result.counts = {k: sum(1 for col in cols if result.values[col] > 0.5) for k, cols in z.items()}
        result.counts = {k: n for k, n in result.counts.items() if n > 0}
    return used, result


def _restricted(c: ws.Candidates, sessions: set[ws.Session]) -> ws.Candidates:
    return ws.Candidates(tuple(st for st in c.staffings if st.session in sessions),
                         {st: v for st, v in c.seats.items() if st.session in sessions})


def counting_bound(problem: ws.Problem, c: ws.Candidates, terms: dict[ws.Key, float], theme: str) -> float:
    """What one theme can gain at most, by counting: its wanted sessions (each with its running bonus,
    kept or not) and as many seats as the largest of them hold, each worth its entrepreneur's best."""
    sessions = {st.session for st in c.staffings if st.session.theme == theme}
    wanted = min(problem.wanted(theme), len(sessions))
    running = sorted((max(terms[st] for st in c.staffings if st.session == s) for s in sessions), reverse=True)
    room = sum(sorted((ws.capacity_of(problem, s) for s in sessions), reverse=True)[:wanted])
    best: dict[str, float] = {}
    for st in c.seats:
        if st.session.theme == theme:
            best[st.interest_id] = max(best.get(st.interest_id, 0.0), terms[st])
    return sum(running[:wanted]) + sum(sorted(best.values(), reverse=True)[:room])


def _theme_part(plan: ws.Plan | None, theme: str) -> ws.Plan | None:
    if plan is None:
        return None
    return ws.Plan(frozenset(st for st in plan.staffings if st.session.theme == theme),
                   frozenset(st for st in plan.seats if st.session.theme == theme))


def solve(problem: ws.Problem, keep: ws.Plan | None = None, time_limit: float = 60.0, gap: float = 1e-4,
          start: Callable[[ws.Problem, ws.Candidates, ws.Plan | None], ws.Plan] | None = greedy,
          threads: int | None = None, c: ws.Candidates | None = None) -> Solved:
    """Decomposed by theme. A start plan (greedy); per theme a local search over how many sessions run in
    each cluster (theme, place, day: ``search_clusters``), and from its counts that theme's relaxation
    (``theme_relaxation``, a MIP solved to ``gap``), PARALLEL_THEMES of them at once in HiGHS threads. The
    counts of each theme (the search's, or the MIP's when they seat more) are realised as sessions (rooms,
    facilitators, location caps) and seated exactly (``seat``, the firm_once rows too). Then, while the gap
    is above ``gap`` and time is left, the whole model over the sessions of the clusters used (and the best
    plan's), then over every session. The best plan found is returned, with the gap to the bound.

    Why the bound is a true upper bound on every valid plan's objective: the objective is a sum over themes
    (a session's running bonus and its seats belong to its theme), and a valid plan's part in one theme is
    a feasible solution of that theme's relaxation (its sessions counted per cluster, each of a cluster's
    sessions at most the j-th largest capacity there, each entrepreneur seated once at most its best worth
    in the cluster, the theme's wanted count, the minimum per session; the rows it leaves out: rooms and
    facilitators per slot, firm_once). So the sum over themes of each relaxation's proven bound (HiGHS's
    dual bound, never below that relaxation's optimum; or the counting bound, when smaller) bounds the whole
    plan's optimum; so does the whole model's dual bound, itself a relaxation (seats per cluster, no
    firm_once rows), so the smaller of the two is taken."""
    started = time.perf_counter()
    deadline = started + time_limit
    c = c or ws.candidates(problem)
    terms = ws.objective_terms(problem, c, keep)
    empty = ws.Plan(frozenset(), frozenset())
    if not c.staffings:
        return Solved("optimal", empty, 0.0, 0.0, 0, 0, time.perf_counter() - started, 0.0)
    first = start(problem, c, keep) if start is not None else None
    built = time.perf_counter()
    if solver_watch.stopped():  # the job was cancelled or lost its lease: nothing more is worth computing
        return Solved("not_solved" if first is None else "feasible", first or empty, None, None, 0, 0,
                      built - started, 0.0)
    themes = sorted({st.session.theme for st in c.staffings})
    parts = {t: _restricted(c, {st.session for st in c.staffings if st.session.theme == t}) for t in themes}
    weight = {t: 1 + len(parts[t].seats) for t in themes}
    best, exact = first, False

    def consider(running: list[ws.Session], time_limit: float) -> None:
        nonlocal best, exact
        seated, placed = seat(problem, c, terms, running, time_limit, gap, threads)
        leads = assign_facilitators(problem, c, running, keep)
        plan = ws.Plan(frozenset(ws.Staffing(s, f) for s, f in leads.items()),
                       frozenset(st for st in seated if st.session in leads))
        if best is None or value_of(plan, terms) > value_of(best, terms):
            best, exact = plan, placed.optimal and len(leads) == len(running)

    def halted() -> Solved:
        """Stopped from outside: the best plan so far, with no bound (the themes searched are not all)."""
        return Solved("feasible" if best is not None else "not_solved", best or empty, None, None, 0, 0,
                      built - started, time.perf_counter() - built)

    # Per theme, in the order of their weight: a local search over how many sessions run in each cluster (in
    # Python, on this thread); then each theme's relaxation (``theme_relaxation``, a MIP) from its search's
    # counts, in HiGHS on one of PARALLEL_THEMES threads (HiGHS releases the GIL while it solves), so the MIPs
    # of two themes run on the two cores at once. Each MIP gets a share of the time left until THEMES_SHARE
    # of the limit, by its theme's size.
    tcs: dict[str, _Clusters] = {}
    chosen: dict[str, dict[Cluster, int]] = {}
    # at 3,000 interests the search needs its time (with a tenth of the limit it ended 4% lower); at 1,000 it
    # stops gaining within a second of CPU per theme (STALE_TRIES ends it) and the MIPs' proofs are what take
    # the time (6-25 s of CPU per theme)
    themes_end = started + THEMES_SHARE * time_limit
    search_end = started + SEARCH_SHARE * time_limit
    order = sorted(themes, key=lambda t: (-weight[t], t))  # the largest first: the two threads end together
    pending = list(order)  # the themes whose MIP has not started yet
    lock = threading.Lock()
    runs: dict[str, _Run] = {}

    # the MIPs' threads watch their own stop, set by this thread once the job's watch asks to stop (so the job's
    # watch is read here only, and nothing runs on once it said stop)
    inner = _ThemesWatch(threading.Event(), False)

    def relax(t: str, counts: dict[Cluster, int], where: dict[str, Cluster]) -> None:
        if inner.stop.is_set():
            return
        with lock:
            waiting = sum(weight[u] for u in pending)
            share = (themes_end - time.perf_counter()) * min(PARALLEL_THEMES, len(pending)) * weight[t] / waiting
            pending.remove(t)
        share = min(share, themes_end - time.perf_counter())
        with solver_watch.watching(inner):
            _, runs[t] = theme_relaxation(problem, parts[t], terms, keep, max(share, 0.5), gap, None, 1,
                                          start_counts=(counts, where))

    pool = ThreadPoolExecutor(max_workers=PARALLEL_THEMES)
    futures: list[Future[None]] = []
    halt = False
    try:
        budget = search_end - time.perf_counter()
        for k, t in enumerate(order):
            if solver_watch.stopped():
                inner.stop.set()
                halt = True
                break
            share = budget * weight[t] / sum(weight[u] for u in order[k:])
            began = time.perf_counter()
            tcs[t] = _theme_clusters(problem, parts[t], terms)
            own = _theme_part(first, t)
            chosen[t] = search_clusters(tcs[t], counts_of(problem, own) if own else {}, problem.wanted(t),
                                        began + share)
            budget -= time.perf_counter() - began
        for t in order if not halt else ():  # the MIPs after every search: a search is starved next to two MIPs
            _, where = _cover(tcs[t], chosen[t])
            futures.append(pool.submit(relax, t, dict(chosen[t]), where))
        while not inner.stop.is_set() and not all(f.done() for f in futures):
            wait(futures, timeout=0.1)
            if solver_watch.stopped():
                inner.stop.set()
                halt = True
        for future in futures:
            future.result()
    finally:
        inner.stop.set()  # nothing runs on after an error either
        pool.shutdown(wait=True)
    solver_watch.pass_on(inner)
    if halt or len(runs) < len(themes):  # stopped from outside: the themes' bounds are not all proven
        return halted()
    bound: float | None = 0.0
    proven = True
    clusters: set[Cluster] = set()
    relaxed: dict[str, dict[Cluster, int]] = {}  # a theme's MIP's counts, where they seat more than its search's
    for t in themes:
        result = runs[t]
        proven = proven and result.optimal
        simple = counting_bound(problem, parts[t], terms, t)
        found = simple if result.bound is None else min(result.bound, simple)
        bound = None if bound is None else bound + found
        clusters |= set(result.counts or {})
        if result.counts:  # the MIP's counts, when they seat more than the search's
            mine, _ = _cover(tcs[t], chosen[t])
            theirs, _ = _cover(tcs[t], {q: min(n, len(tcs[t].caps[q])) for q, n in result.counts.items()})
            log.debug("workshops: theme %s searched %.1f, relaxation's plan %.1f, bound %s (%.1f s)", t, mine,
                      theirs, result.bound, result.seconds)
            if theirs > mine + 1e-6:
                relaxed[t] = dict(result.counts)
    log.debug("workshops: themes %.1f s, bound %s", time.perf_counter() - started, bound)
    searched: dict[Cluster, int] = {}
    for _ in range(4):  # a count the rooms, facilitators or location caps cannot hold: searched again without it
        searched = {k: n for counts in chosen.values() for k, n in counts.items()}
        running_ = realise(problem, c, searched, keep)
        got = counts_of(problem, ws.Plan(frozenset(ws.Staffing(s, "") for s in running_), frozenset()))
        short = [q for q, n in searched.items() if got.get(q, 0) < n]
        if not short or deadline - time.perf_counter() < 0.1 * time_limit:
            break
        for t in sorted({q[0] for q in short}):
            caps = dict(tcs[t].caps)
            for q in short:
                if q[0] == t:
                    caps[q] = caps[q][:got.get(q, 0)]
            tcs[t] = dataclasses.replace(tcs[t], caps=caps)
            counts = {q: min(n, len(caps[q])) for q, n in chosen[t].items()}
            chosen[t] = search_clusters(tcs[t], counts, problem.wanted(t), time.perf_counter() + 0.01 * time_limit)
    if searched:
        consider(running_, max(0.05 * time_limit, 1.0))
    if relaxed and deadline - time.perf_counter() > 0.08 * time_limit:
        # the MIPs' counts leave out rooms and facilitators per slot: realised and seated too, and kept only
        # when that plan is better (``consider``)
        mixed = {k: n for t, counts in {**chosen, **relaxed}.items() for k, n in counts.items()}
        consider(realise(problem, c, mixed, keep), max(0.05 * time_limit, 1.0))
    clusters |= set(searched)
    log.debug("workshops: searched and realised %.1f s, value %.1f", time.perf_counter() - started,
              value_of(best, terms) if best else 0.0)
    near = {st.session for st in c.staffings if _cluster(problem, st.session) in clusters}
    near |= {st.session for st in (best.staffings if best else ())}
    n = m = 0
    result = _Run(None, False, None, 0.0)
    close = bound is not None and best is not None and bound - value_of(best, terms) <= gap * abs(bound)
    left = deadline - time.perf_counter() - 0.15 * time_limit  # building the model and seating take a while
    if solver_watch.stopped():
        return halted()
    if not close and left > 0.05 * time_limit:
        running, result, n, m = choose_sessions(problem, _restricted(c, near), terms, keep, left, gap, best, threads)
        if result.values is not None:
            consider(running, max(min(0.05 * time_limit, deadline - time.perf_counter()), 0.5))
    log.debug("workshops: near clusters %.1f s, value %.1f", time.perf_counter() - started,
              value_of(best, terms) if best else 0.0)
    if solver_watch.stopped():
        return halted()
    if bound is None or not proven or (best is not None and bound - value_of(best, terms) > gap * abs(bound)):
        left = deadline - time.perf_counter() - 0.05 * time_limit
        if left > max(0.15 * time_limit, 1.0):  # building the whole model alone takes a while
            running_all, whole, n, m = choose_sessions(problem, c, terms, keep, left, gap, best, threads)
            if whole.values is not None:
                result = whole
                consider(running_all, max(deadline - time.perf_counter(), 0.5))
            if whole.bound is not None:
                bound = whole.bound if bound is None else min(bound, whole.bound)
    plan = best or empty
    solved = time.perf_counter()
    if not plan.staffings and result.values is None and first is None:
        return Solved("not_solved", empty, bound, None, n, m, built - started, solved - built)
    value = value_of(plan, terms)
    gap_found = None if bound is None else max(0.0, bound - value) / max(abs(bound), 1.0)
    optimal = gap_found is not None and gap_found <= gap and (exact or value >= (bound or 0))
    return Solved("optimal" if optimal else "feasible", plan, bound, gap_found, n, m, built - started,
                  solved - built)
