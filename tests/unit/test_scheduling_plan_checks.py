"""The independent plan validator (scheduling.domain.plan_checks) against the planners: every plan the
workshop and kickoff planners return keeps every rule on random small instances made so that the rules
bind; the validator agrees with the optimiser's own rows on random plans; and on tiny instances the
planners' optimum equals a brute force over every plan the independent validator accepts."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, time

import pytest
from scheduling import kickoff_optimiser, workshop_solver
from scheduling.domain import kickoffs as ko
from scheduling.domain import plan_checks
from scheduling.domain import workshops as ws
from scheduling.domain.calendar import TZ
from scheduling.service_layer.workshops import optimise

MON, TUE = date(2031, 3, 3), date(2031, 3, 4)
SLOTS = (ws.Slot(MON, "morning"), ws.Slot(MON, "afternoon"), ws.Slot(TUE, "morning"))
PLACES = ("GM0344", "GM0307")
THEMES = ("ai", "webshop")


def workshop_instance(rng: random.Random, rooms: int, staff: int, firms: int, slots: int = 3) -> ws.Problem:
    """Small rooms, few facilitators with few slots, firms interested in both themes on few days: capacity,
    facilitators, rooms, the location cap, wanted sessions, minimum participants and firm_once all bind."""
    chosen = SLOTS[:slots]
    days = sorted({s.day for s in chosen})
    room_list = tuple(ws.Room(f"r{k}", rng.choice(PLACES), rng.randint(1, 3),
                              frozenset(rng.sample(chosen, rng.randint(1, len(chosen))))) for k in range(rooms))
    facilitators = tuple(ws.Facilitator(f"f{k}", frozenset(rng.sample(THEMES, rng.randint(1, 2))),
                                        frozenset(rng.sample(chosen, rng.randint(1, len(chosen)))))
                         for k in range(staff))
    interests: list[ws.Interest] = []
    for f in range(firms):
        locations = tuple(rng.sample(PLACES, rng.randint(1, 2)))
        for theme in rng.sample(THEMES, rng.randint(1, 2)):
            n = len(interests)
            interests.append(ws.Interest(f"i{n:02d}", f"firm{f}", theme, locations, rng.random() < 0.3,
                                         frozenset(rng.sample(days, rng.randint(1, len(days)))), n))
    return ws.Problem(frozenset(chosen), room_list, facilitators, tuple(interests),
                      {t: rng.randint(0, 3) for t in THEMES}, max_sessions_per_location_day=rng.choice((1, 2)),
                      online_capacity=rng.choice((0, 1, 2)), min_participants=rng.choice((1, 2)))


def test_every_workshop_plan_keeps_every_rule_on_binding_instances() -> None:
    bound_rules: set[str] = set()
    for seed in range(40):
        rng = random.Random(seed)
        p = workshop_instance(rng, rooms=3, staff=2, firms=6)
        outcome = optimise(p, time_limit=10)
        assert plan_checks.workshop_plan_errors(p, outcome.plan) == [], seed
        assert ws.violations(p, outcome.plan) == [], seed
        # which rules were tight in the plan (so the instances do make them bind)
        c = ws.candidates(p)
        values = outcome.plan.values()
        bound_rules |= {r.group for r in ws.hard_rows(p, c) if len(r.terms) > 1 and abs(r.lhs(values) - r.rhs) < 1e-9
                        and any(values.get(k) for k, _ in r.terms)}
    assert {"capacity", "room_once", "facilitator_once", "sessions_wanted", "one_seat_per_theme",
            "location_day_cap", "min_participants", "firm_once"} <= bound_rules


def test_a_firm_interested_in_two_themes_is_never_seated_twice_in_one_slot() -> None:
    only = ws.Slot(MON, "morning")
    p = ws.Problem(frozenset({only}),
                   (ws.Room("a", "GM0344", 5, frozenset({only})), ws.Room("b", "GM0344", 5, frozenset({only}))),
                   (ws.Facilitator("f1", frozenset({"ai"}), frozenset({only})),
                    ws.Facilitator("f2", frozenset({"webshop"}), frozenset({only}))),
                   (ws.Interest("both-ai", "firm1", "ai", ("GM0344",), False, frozenset({MON}), 0),
                    ws.Interest("both-web", "firm1", "webshop", ("GM0344",), False, frozenset({MON}), 1),
                    ws.Interest("ai", "firm2", "ai", ("GM0344",), False, frozenset({MON}), 2),
                    ws.Interest("web", "firm3", "webshop", ("GM0344",), False, frozenset({MON}), 3)),
                   {"ai": 1, "webshop": 1}, min_participants=1)
    plan = optimise(p).plan
    assert len(plan.staffings) == 2
    assert len({s.interest_id for s in plan.seats} & {"both-ai", "both-web"}) == 1
    assert plan_checks.workshop_plan_errors(p, plan) == []
    both = ws.Plan(plan.staffings, frozenset({ws.Seat(s.interest_id, s.session) for s in plan.seats} |
                                             {ws.Seat(i, st.session) for st in plan.staffings
                                              for i in ("both-ai", "both-web")
                                              if p.interest(i).theme == st.session.theme}))  # type: ignore[union-attr]
    assert any("firm firm1 is seated in 2 sessions" in e for e in plan_checks.workshop_plan_errors(p, both))
    assert any(e.startswith("firm_once") for e in ws.violations(p, both))


def test_the_cluster_search_never_loses_value_and_its_sessions_keep_every_rule() -> None:
    """The local search over each theme's clusters starts from the greedy plan and never ends below it;
    the sessions it asks for, realised and seated, pass the independent validator."""
    improved = 0
    for seed in range(40):
        rng = random.Random(500 + seed)
        p = workshop_instance(rng, rooms=4, staff=3, firms=10)
        c = ws.candidates(p)
        terms = ws.objective_terms(p, c)
        start = workshop_solver.greedy(p, c)
        counts: dict[workshop_solver.Cluster, int] = {}
        for theme in sorted({st.session.theme for st in c.staffings}):
            part = ws.Candidates(tuple(st for st in c.staffings if st.session.theme == theme),
                                 {st: v for st, v in c.seats.items() if st.session.theme == theme})
            tc = workshop_solver._theme_clusters(p, part, terms)
            before = workshop_solver.counts_of(p, ws.Plan(
                frozenset(st for st in start.staffings if st.session.theme == theme), frozenset()))
            after = workshop_solver.search_clusters(tc, before, p.wanted(theme), float("inf"))
            assert sum(after.values()) <= p.wanted(theme)
            was, now = workshop_solver._cover(tc, before)[0], workshop_solver._cover(tc, after)[0]
            assert now >= was - 1e-9, seed
            improved += now > was + 1e-9
            counts.update(after)
        running = workshop_solver.realise(p, c, counts)
        seated, _ = workshop_solver.seat(p, c, terms, running, 10, 1e-4, None)
        leads = workshop_solver.assign_facilitators(p, c, running)
        plan = ws.Plan(frozenset(ws.Staffing(s, f) for s, f in leads.items()),
                       frozenset(st for st in seated if st.session in leads))
        assert plan_checks.workshop_plan_errors(p, plan) == [], seed
    assert improved > 0


def test_the_validator_agrees_with_the_optimisers_rows_on_random_plans() -> None:
    compared = broken = 0
    for seed in range(60):
        rng = random.Random(1000 + seed)
        p = workshop_instance(rng, rooms=2, staff=2, firms=3, slots=2)
        c = ws.candidates(p)
        keys: list[ws.Key] = [*c.staffings, *sorted(c.seats)]
        if not keys:
            continue
        for _ in range(20):
            chosen = [k for k in keys if rng.random() < 0.4]
            plan = ws.Plan(frozenset(k for k in chosen if isinstance(k, ws.Staffing)),
                           frozenset(k for k in chosen if isinstance(k, ws.Seat)))
            mine, theirs = plan_checks.workshop_plan_errors(p, plan), ws.violations(p, plan)
            assert (mine == []) == (theirs == []), (seed, mine, theirs)
            compared += 1
            broken += bool(mine)
    assert compared > 500 and 0 < broken < compared


def brute_force(p: ws.Problem) -> float:
    """The best objective over every plan of candidate decisions that the independent validator accepts."""
    c = ws.candidates(p)
    keys: list[ws.Key] = [*c.staffings, *sorted(c.seats)]
    assert len(keys) <= 14, len(keys)
    best = 0.0
    for bits in itertools.product((False, True), repeat=len(keys)):
        chosen = [k for k, b in zip(keys, bits, strict=True) if b]
        plan = ws.Plan(frozenset(k for k in chosen if isinstance(k, ws.Staffing)),
                       frozenset(k for k in chosen if isinstance(k, ws.Seat)))
        if not plan_checks.workshop_plan_errors(p, plan):
            best = max(best, ws.objective_value(p, plan))
    return best


def test_the_workshop_optimum_equals_a_brute_force_checked_by_the_independent_validator() -> None:
    compared = 0
    for seed in range(200):
        rng = random.Random(5000 + seed)
        p = workshop_instance(rng, rooms=2, staff=2, firms=2, slots=2)
        c = ws.candidates(p)
        if not c.staffings or len(c.staffings) + len(c.seats) > 14:
            continue
        outcome = optimise(p)
        assert outcome.status == "optimal", seed
        assert outcome.objective == pytest.approx(brute_force(p), abs=1e-6), seed
        compared += 1
        if compared == 40:
            break
    assert compared >= 25


# ---- kickoffs ---------------------------------------------------------------------------------

FIRST = date(2027, 2, 1)  # a Monday; 2027-02-15..19 is a school holiday (voorjaarsvakantie) in some regions


def kickoff_instance(rng: random.Random, n: int, days: int, coordinators: int, cap: int,
                     slot_times: tuple[time, ...] = (time(10), time(11, 30), time(13, 30), time(15))
                     ) -> tuple[list[ko.Kickoff], list[ko.Booking], ko.Calendars, ko.Rules]:
    last = date.fromordinal(FIRST.toordinal() + days - 1)
    firms = [f"firm{k}" for k in range(max(1, n // 2))]
    teams = [f"team{k}" for k in range(max(1, (2 * n) // 3))]
    kickoffs = [ko.Kickoff(f"m{k}", rng.choice(firms), rng.choice(teams), rng.choice(("inst0", "inst1")),
                           f"c{rng.randrange(coordinators)}", FIRST, last,
                           datetime.combine(FIRST, rng.choice(slot_times), TZ) if rng.random() < 0.2 else None)
                for k in range(n)]
    availability = {f: ko.FirmAvailability(tuple(ko.TimeWindow(d, time(9), time(rng.choice((12, 17))))
                                                 for d in rng.sample(range(5), rng.randint(1, 3))),
                                           frozenset({date.fromordinal(FIRST.toordinal() + rng.randrange(days))}))
                    for f in firms}
    institutions = {"inst0": ko.InstitutionCalendar("noord", ((FIRST, FIRST),)), "inst1": ko.InstitutionCalendar()}
    fixed = [ko.Booking("old", firms[0], "team-x", "c0", datetime.combine(date.fromordinal(FIRST.toordinal() + 1),
                                                                           time(10, 15), TZ))]
    cal = ko.Calendars({date.fromordinal(FIRST.toordinal() + 2): "a holiday"}, {"noord": ((FIRST, FIRST),)},
                       institutions, availability)
    return kickoffs, fixed, cal, ko.Rules(cap, slot_times)


def test_every_kickoff_plan_keeps_every_rule_and_the_groups_change_nothing() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        kickoffs, fixed, cal, rules = kickoff_instance(rng, n=24, days=5, coordinators=3, cap=2)
        split = kickoff_optimiser.plan(kickoffs, fixed, cal, rules)
        whole = kickoff_optimiser.plan(kickoffs, fixed, cal, rules, decompose=False)
        assert plan_checks.kickoff_plan_errors(kickoffs, split.placed, fixed, cal, rules) == [], seed
        assert ko.violations(kickoffs, split.placed, fixed, cal, rules) == [], seed
        assert split.status == "optimal"
        assert lexicographic(kickoffs, dict(split.placed), rules) == lexicographic(kickoffs, dict(whole.placed), rules)
        greedy = kickoff_optimiser.greedy(kickoffs, fixed, cal, rules)
        assert plan_checks.kickoff_plan_errors(kickoffs, greedy.placed, fixed, cal, rules) == [], seed
        assert len(greedy.placed) <= len(split.placed)


def lexicographic(kickoffs: list[ko.Kickoff], placed: dict[str, datetime], rules: ko.Rules) -> tuple[int, int, int]:
    return (len(placed), sum(k.current is not None and k.current == placed.get(k.match_id) for k in kickoffs),
            -kickoff_optimiser.earliness(kickoffs, placed, rules))


def test_the_kickoff_optimum_equals_a_brute_force_checked_by_the_independent_validator() -> None:
    compared = 0
    for seed in range(70):
        rng = random.Random(300 + seed)
        kickoffs, fixed, cal, rules = kickoff_instance(rng, n=4, days=2, coordinators=2, cap=1,
                                                       slot_times=(time(10), time(13, 30)))
        options = [[None, *(datetime.combine(date.fromordinal(FIRST.toordinal() + d), t, TZ)
                            for d in range(2) for t in rules.slot_times)] for _ in kickoffs]
        best = (0, 0, 0)
        for choice in itertools.product(*options):
            placed = {k.match_id: s for k, s in zip(kickoffs, choice, strict=True) if s is not None}
            if not plan_checks.kickoff_plan_errors(kickoffs, placed, fixed, cal, rules):
                best = max(best, lexicographic(kickoffs, placed, rules))
        found = kickoff_optimiser.plan(kickoffs, fixed, cal, rules)
        assert lexicographic(kickoffs, dict(found.placed), rules) == best, seed
        compared += best[0] > 0
    assert compared >= 20


def test_the_kickoff_validator_names_each_broken_rule() -> None:
    k1 = ko.Kickoff("m1", "firm", "team1", "inst0", "c0", FIRST, date(2027, 2, 12))
    k2 = ko.Kickoff("m2", "firm", "team2", "inst1", "c0", FIRST, date(2027, 2, 12))
    cal = ko.Calendars({date(2027, 2, 3): "a holiday"}, {"noord": ((date(2027, 2, 4), date(2027, 2, 4)),)},
                       {"inst0": ko.InstitutionCalendar("noord", ((date(2027, 2, 5), date(2027, 2, 5)),))},
                       {"firm": ko.FirmAvailability(blocked=frozenset({date(2027, 2, 8)}))})
    rules = ko.Rules(daily_cap=1)

    def errors(**placed: datetime) -> list[str]:
        return plan_checks.kickoff_plan_errors([k1, k2], placed, [], cal, rules)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2027, 2, day, hour, minute, tzinfo=TZ)

    assert errors(m1=at(1, 10), m2=at(2, 10)) == []
    assert any("firm firm is in kickoff m1 and kickoff m2 at once" in e for e in errors(m1=at(1, 10), m2=at(1, 10)))
    assert any("over the daily cap" in e for e in errors(m1=at(1, 10), m2=at(1, 13, 30)))
    assert any("public holiday" in e for e in errors(m1=at(3, 10)))
    assert any("school holiday of region noord" in e for e in errors(m1=at(4, 10)))
    assert errors(m2=at(4, 10)) == []  # inst1 has no region
    assert any("non-teaching day" in e for e in errors(m1=at(5, 10)))
    assert any("not a weekday" in e for e in errors(m1=at(6, 10)))
    assert any("blocked that date" in e for e in errors(m1=at(8, 10)))
    assert any("outside the firm's weekly availability" in e for e in errors(m1=at(1, 16, 30)))
    assert any("not one of the coordinator's slots" in e for e in errors(m1=at(1, 10, 15)))
    assert any("outside its window" in e for e in errors(m1=at(15, 10)))
    assert any("not one to plan" in e for e in errors(m9=at(1, 10)))
    assert plan_checks.kickoff_plan_errors([k1], {"m1": at(1, 10, 30)}, [
        ko.Booking("b", "other", "team1", "c9", at(1, 10))], cal, rules, on_grid=False) != []


# ---- the benchmark's instances ----------------------------------------------------------------


@pytest.mark.parametrize("interests", [300, 1000, 3000])
def test_the_workshop_plan_passes_the_validator_at_every_benchmark_size(interests: int) -> None:
    from benchmarks.scheduling_generator import WorkshopSize, workshop_problem

    p = workshop_problem(WorkshopSize(interests), seed=1)
    outcome = optimise(p, time_limit=10)
    assert outcome.status in ("optimal", "feasible")
    assert len(outcome.plan.seats) > interests // 3
    assert outcome.objective >= ws.objective_value(p, workshop_solver.greedy(p)) - 1e-6
    assert outcome.gap is not None and outcome.bound is not None and outcome.objective <= outcome.bound + 1e-6
    assert plan_checks.workshop_plan_errors(p, outcome.plan) == []


@pytest.mark.parametrize("n", [500, 5000])
def test_the_kickoff_plan_passes_the_validator_at_every_benchmark_size(n: int) -> None:
    from benchmarks.scheduling_generator import kickoff_problem

    inst = kickoff_problem(n, seed=1)
    plan = kickoff_optimiser.plan(inst.kickoffs, inst.fixed, inst.calendars, inst.rules, time_limit=120)
    assert len(plan.placed) > n * 0.9
    assert plan_checks.kickoff_plan_errors(inst.kickoffs, plan.placed, inst.fixed, inst.calendars, inst.rules) == []


class _StopAfter:
    """A job's stop event that reads as set from its ``after``-th look on (the job cancelled mid-plan)."""

    def __init__(self, after: int) -> None:
        self.after, self.looks = after, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.after


@pytest.mark.parametrize("after", [1, 3, 40])
def test_a_cancelled_plan_job_frees_its_planner_at_the_next_step_with_the_best_plan_so_far(after: int) -> None:
    """A cancelled job (or one whose worker lost its lease) must not keep the planner busy for its whole
    time limit: the planner stops at its next step and hands back the best plan so far, claiming no bound,
    so nothing says it is optimal."""
    from scheduling import solver_watch

    from benchmarks.scheduling_generator import WorkshopSize, workshop_problem

    p = workshop_problem(WorkshopSize(1000), seed=1)
    watch = type("Watch", (), {})()
    watch.stop, watch.time_limit_reached = _StopAfter(after), False
    with solver_watch.watching(watch):
        solved = workshop_solver.solve(p, time_limit=600)
    assert solved.status == "feasible" and solved.bound is None and solved.gap is None
    assert watch.stop.looks <= after + 2  # it stopped looking: nothing ran on after the stop
    assert plan_checks.workshop_plan_errors(p, solved.plan) == []
    assert workshop_solver.value_of(solved.plan, ws.objective_terms(p, ws.candidates(p), None)) >= (
        ws.objective_value(p, workshop_solver.greedy(p)) - 1e-6)
