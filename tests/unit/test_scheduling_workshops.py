"""The workshop optimiser on small instances: every result is checked by the validator that reuses the
optimiser's constraint rows, and on tiny instances its objective equals a brute-force search's."""

from __future__ import annotations

import itertools
import random
from datetime import date

import pytest
from scheduling.domain import workshops as ws
from scheduling.service_layer.workshops import optimise

MON, TUE = date(2031, 3, 3), date(2031, 3, 4)
MON_AM, MON_PM, TUE_AM = ws.Slot(MON, "morning"), ws.Slot(MON, "afternoon"), ws.Slot(TUE, "morning")
UTRECHT, AMERSFOORT, ZEIST = "GM0344", "GM0307", "GM0355"


def room(room_id: str, municipality: str, capacity: int, *slots: ws.Slot) -> ws.Room:
    return ws.Room(room_id, municipality, capacity, frozenset(slots))


def facilitator(facilitator_id: str, themes: set[str], *slots: ws.Slot) -> ws.Facilitator:
    return ws.Facilitator(facilitator_id, frozenset(themes), frozenset(slots))


def interest(n: int, theme: str, locations: tuple[str, ...], *days: date, online: bool = False,
             firm: str | None = None) -> ws.Interest:
    return ws.Interest(f"i{n:02d}", firm or f"firm{n:02d}", theme, locations, online, frozenset(days), n)


def problem(rooms: list[ws.Room], facilitators: list[ws.Facilitator], interests: list[ws.Interest],
            slots: tuple[ws.Slot, ...] = (MON_AM, MON_PM, TUE_AM), **settings: int | dict[str, int]) -> ws.Problem:
    return ws.Problem(frozenset(slots), tuple(rooms), tuple(facilitators), tuple(interests),
                      **settings)  # type: ignore[arg-type]


def solved(p: ws.Problem) -> ws.Plan:
    outcome = optimise(p)
    assert outcome.status == "optimal", outcome
    assert ws.violations(p, outcome.plan) == []
    return outcome.plan


def seated_at(plan: ws.Plan) -> dict[str, ws.Session]:
    return {s.interest_id: s.session for s in plan.seats}


# ---- the optimiser --------------------------------------------------------------------------


def test_a_facilitator_is_never_double_booked_and_the_second_theme_moves_to_another_slot() -> None:
    p = problem([room("r1", UTRECHT, 10, MON_AM, MON_PM), room("r2", UTRECHT, 10, MON_AM, MON_PM)],
                [facilitator("f1", {"ai", "webshop"}, MON_AM, MON_PM)],
                [interest(1, "ai", (UTRECHT,), MON), interest(2, "webshop", (UTRECHT,), MON)],
                min_participants=1)
    plan = solved(p)
    sessions = plan.sessions()
    assert sorted(s.theme for s in sessions) == ["ai", "webshop"]
    assert len({s.slot for s in sessions}) == 2  # one facilitator, two slots
    assert set(seated_at(plan)) == {"i01", "i02"}


def test_room_capacity_limits_seats_and_the_rest_stay_unseated() -> None:
    p = problem([room("r1", UTRECHT, 2, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)],
                [interest(n, "ai", (UTRECHT,), MON) for n in range(1, 5)], min_participants=1)
    plan = solved(p)
    assert len(plan.seats) == 2 and len(plan.sessions()) == 1


def test_seats_go_to_the_preferred_location_and_only_on_available_days() -> None:
    p = problem([room("near", UTRECHT, 5, MON_AM, TUE_AM), room("far", AMERSFOORT, 5, MON_AM, TUE_AM)],
                [facilitator("f1", {"ai"}, MON_AM, TUE_AM), facilitator("f2", {"ai"}, MON_AM, TUE_AM)],
                [interest(1, "ai", (UTRECHT, AMERSFOORT), TUE), interest(2, "ai", (AMERSFOORT,), MON)],
                sessions_wanted={"ai": 2}, min_participants=1)
    seats = seated_at(solved(p))
    assert seats["i01"].venue == "near" and seats["i01"].slot == TUE_AM
    assert seats["i02"].venue == "far" and seats["i02"].slot.day == MON


def test_online_serves_those_who_accept_it_and_nobody_else() -> None:
    p = problem([], [facilitator("f1", {"webshop"}, MON_PM)],
                [interest(1, "webshop", (ZEIST,), MON, online=True), interest(2, "webshop", (ZEIST,), MON)],
                online_capacity=30, min_participants=1)
    plan = solved(p)
    assert seated_at(plan) == {"i01": ws.Session("webshop", ws.ONLINE, MON_PM)}


def test_the_cap_per_location_and_day_holds_even_with_free_rooms() -> None:
    rooms = [room(f"r{k}", UTRECHT, 3, MON_AM, MON_PM) for k in range(3)]
    staff = [facilitator(f"f{k}", {"ai"}, MON_AM, MON_PM) for k in range(3)]
    p = problem(rooms, staff, [interest(n, "ai", (UTRECHT,), MON) for n in range(1, 10)],
                sessions_wanted={"ai": 3}, max_sessions_per_location_day=2, min_participants=1)
    plan = solved(p)
    assert len(plan.sessions()) == 2 and len(plan.seats) == 6
    report = ws.unscheduled(p, plan)
    assert report == [{"theme": "ai", "sessions": 1,
                       "reason": "rooms, facilitators or the per-location cap were needed for other sessions"}]


def test_a_session_below_the_minimum_does_not_run() -> None:
    p = problem([room("r1", UTRECHT, 10, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)],
                [interest(1, "ai", (UTRECHT,), MON), interest(2, "ai", (UTRECHT,), MON)], min_participants=3)
    outcome = optimise(p)
    assert outcome.status == "empty" and "no session is possible" in (outcome.reason or "")
    assert ws.unscheduled(p, outcome.plan) == [{"theme": "ai", "sessions": 1, "reason": "not enough interest"}]


def test_every_wanted_session_that_can_run_is_scheduled() -> None:
    # seats alone would be served by one session; the penalty makes the second wanted session run too
    p = problem([room("r1", UTRECHT, 10, MON_AM, MON_PM)], [facilitator("f1", {"ai"}, MON_AM, MON_PM)],
                [interest(n, "ai", (UTRECHT,), MON) for n in range(1, 5)], sessions_wanted={"ai": 2},
                min_participants=2)
    plan = solved(p)
    assert len(plan.sessions()) == 2 and len(plan.seats) == 4
    assert ws.unscheduled(p, plan) == []


@pytest.mark.parametrize(("p", "reason"), [
    (problem([room("r1", UTRECHT, 5, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)], []), "no interest registered"),
    (problem([room("r1", UTRECHT, 5, MON_AM)], [], [interest(1, "ai", (UTRECHT,), MON)]), "no facilitators"),
    (problem([], [facilitator("f1", {"ai"}, MON_AM)], [interest(1, "ai", (UTRECHT,), MON)]),
     "no rooms and no online sessions"),
    (problem([room("r1", UTRECHT, 5, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)],
             [interest(1, "ai", (UTRECHT,), MON)], slots=()), "no candidate slots"),
])
def test_empty_input_is_reported_not_crashed(p: ws.Problem, reason: str) -> None:
    outcome = optimise(p)
    assert (outcome.status, outcome.reason) == ("empty", reason)
    assert outcome.plan == ws.Plan(frozenset(), frozenset())


def test_a_theme_without_a_facilitator_is_reported_with_its_reason() -> None:
    p = problem([room("r1", UTRECHT, 5, MON_AM)], [facilitator("f1", {"webshop"}, MON_AM)],
                [interest(1, "ai", (UTRECHT,), MON), interest(2, "webshop", (UTRECHT,), MON)], min_participants=1)
    plan = solved(p)
    assert [s.theme for s in plan.sessions()] == ["webshop"]
    assert ws.unscheduled(p, plan) == [
        {"theme": "ai", "sessions": 1, "reason": "no facilitator for this theme is available in a candidate slot"}]


# ---- the validator --------------------------------------------------------------------------


def _groups(found: list[str]) -> set[str]:
    return {f.split(":")[0] if not f.startswith("impossible") else "impossible" for f in found}


def test_the_validator_names_each_broken_rule() -> None:
    p = problem([room("r1", UTRECHT, 1, MON_AM), room("r2", AMERSFOORT, 5, MON_AM)],
                [facilitator("f1", {"ai", "webshop"}, MON_AM)],
                [interest(1, "ai", (UTRECHT, AMERSFOORT), MON), interest(2, "ai", (UTRECHT,), MON),
                 interest(3, "webshop", (AMERSFOORT,), MON)], min_participants=1)
    ai_r1, web_r2 = ws.Session("ai", "r1", MON_AM), ws.Session("webshop", "r2", MON_AM)
    ai_r2 = ws.Session("ai", "r2", MON_AM)
    double_booked = ws.Plan(frozenset({ws.Staffing(ai_r1, "f1"), ws.Staffing(web_r2, "f1")}),
                            frozenset({ws.Seat("i01", ai_r1), ws.Seat("i03", web_r2)}))
    assert _groups(ws.violations(p, double_booked)) == {"facilitator_once"}
    over_capacity = ws.Plan(frozenset({ws.Staffing(ai_r1, "f1")}),
                            frozenset({ws.Seat("i01", ai_r1), ws.Seat("i02", ai_r1)}))
    assert _groups(ws.violations(p, over_capacity)) == {"capacity"}
    seat_without_session = ws.Plan(frozenset(), frozenset({ws.Seat("i01", ai_r1)}))
    assert _groups(ws.violations(p, seat_without_session)) == {"capacity"}
    two_seats_one_theme = ws.Plan(frozenset({ws.Staffing(ai_r2, "f1")}),
                                  frozenset({ws.Seat("i01", ai_r2), ws.Seat("i01", ai_r1)}))
    assert _groups(ws.violations(p, two_seats_one_theme)) >= {"one_seat_per_theme", "capacity"}
    not_preferred = ws.Plan(frozenset({ws.Staffing(ai_r2, "f1")}), frozenset({ws.Seat("i02", ai_r2)}))
    assert _groups(ws.violations(p, not_preferred)) == {"impossible"}
    # Tuesday is no candidate slot, and an empty session breaks the minimum as well
    unavailable_slot = ws.Plan(frozenset({ws.Staffing(ws.Session("ai", "r1", TUE_AM), "f1")}), frozenset())
    assert _groups(ws.violations(p, unavailable_slot)) == {"impossible", "min_participants"}
    assert ws.violations(p, ws.Plan(frozenset({ws.Staffing(ai_r2, "f1")}), frozenset({ws.Seat("i01", ai_r2)}))) == []


def test_the_validator_enforces_the_location_cap_and_wanted_sessions() -> None:
    p = problem([room("a", UTRECHT, 5, MON_AM), room("b", UTRECHT, 5, MON_PM)],
                [facilitator("f1", {"ai"}, MON_AM, MON_PM)],
                [interest(1, "ai", (UTRECHT,), MON), interest(2, "ai", (UTRECHT,), MON)],
                max_sessions_per_location_day=1, min_participants=1, sessions_wanted={"ai": 2})
    s1, s2 = ws.Session("ai", "a", MON_AM), ws.Session("ai", "b", MON_PM)
    both = ws.Plan(frozenset({ws.Staffing(s1, "f1"), ws.Staffing(s2, "f1")}),
                   frozenset({ws.Seat("i01", s1), ws.Seat("i02", s2)}))
    assert _groups(ws.violations(p, both)) == {"location_day_cap"}
    p_one = ws.Problem(p.slots, p.rooms, p.facilitators, p.interests, {"ai": 1}, 5, 0, 1)
    assert _groups(ws.violations(p_one, both)) == {"sessions_wanted"}


def test_a_replan_keeps_a_current_seat_over_less_travel_but_not_over_another_seat() -> None:
    # i01 ranks Amersfoort first, Utrecht second; it sits in Utrecht now
    rooms = [room("utr", UTRECHT, 1, MON_AM), room("amf", AMERSFOORT, 1, MON_PM)]
    staff = [facilitator("f1", {"ai"}, MON_AM, MON_PM)]
    current_session = ws.Session("ai", "utr", MON_AM)
    current = ws.Plan(frozenset({ws.Staffing(current_session, "f1")}),
                      frozenset({ws.Seat("i01", current_session)}))
    alone = problem(rooms, staff, [interest(1, "ai", (AMERSFOORT, UTRECHT), MON)], min_participants=1)
    assert seated_at(solved(alone)) == {"i01": ws.Session("ai", "amf", MON_PM)}  # a fresh plan: least travel
    kept = optimise(alone, keep=current)
    assert kept.status == "optimal" and seated_at(kept.plan) == {"i01": current_session}
    # i02 can only come to Utrecht: keeping i01 there would cost i02 its seat, so i01 moves
    both = problem(rooms, staff, [interest(1, "ai", (AMERSFOORT, UTRECHT), MON), interest(2, "ai", (UTRECHT,), MON)],
                   min_participants=1, sessions_wanted={"ai": 2})
    moved = optimise(both, keep=current)
    assert ws.violations(both, moved.plan) == []
    assert seated_at(moved.plan) == {"i01": ws.Session("ai", "amf", MON_PM), "i02": current_session}


# ---- brute force on tiny instances ----------------------------------------------------------


def brute_force(p: ws.Problem) -> float:
    """The best objective over every 0/1 assignment of the candidate decisions that keeps every rule."""
    c = ws.candidates(p)
    keys: list[ws.Key] = [*c.staffings, *sorted(c.seats)]
    assert len(keys) <= 12, len(keys)
    rows = list(ws.hard_rows(p, c))
    weights = ws.objective_terms(p, c)
    best = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=len(keys)):
        values = dict(zip(keys, bits, strict=True))
        if all(r.holds(values) for r in rows):
            best = max(best, sum(weights[k] * v for k, v in values.items()))
    return best


def tiny(seed: int) -> ws.Problem:
    rng = random.Random(seed)
    slots = (MON_AM, MON_PM)
    places = (UTRECHT, AMERSFOORT)
    rooms = [room(f"r{k}", rng.choice(places), rng.randint(1, 2), *rng.sample(slots, rng.randint(1, 2)))
             for k in range(2)]
    staff = [facilitator(f"f{k}", set(rng.sample(["ai", "webshop"], rng.randint(1, 2))),
                         *rng.sample(slots, rng.randint(1, 2))) for k in range(2)]
    interests = [interest(n, rng.choice(["ai", "webshop"]), tuple(rng.sample(places, rng.randint(1, 2))), MON,
                          online=rng.random() < 0.3) for n in range(1, 4)]
    return problem(rooms, staff, interests, slots=slots, online_capacity=rng.choice([0, 1]),
                   max_sessions_per_location_day=rng.choice([1, 2]), min_participants=1,
                   sessions_wanted={"ai": rng.randint(0, 2), "webshop": rng.randint(0, 2)})


def test_the_optimiser_matches_brute_force_on_tiny_instances() -> None:
    compared = 0
    for seed in range(60):
        p = tiny(seed)
        c = ws.candidates(p)
        if not c.staffings or len(c.staffings) + len(c.seats) > 12:
            continue
        outcome = optimise(p)
        assert outcome.status == "optimal"
        assert ws.violations(p, outcome.plan) == [], seed
        assert outcome.objective == pytest.approx(brute_force(p)), seed
        compared += 1
    assert compared >= 30  # the generator must keep producing instances worth comparing


def test_the_waitlist_is_in_registration_order() -> None:
    late, early, tie = interest(5, "ai", (UTRECHT,), MON), interest(1, "ai", (UTRECHT,), MON), \
        ws.Interest("i00", "firmx", "ai", (UTRECHT,), False, frozenset({MON}), 1)
    assert [i.interest_id for i in ws.waitlist_order([late, early, tie])] == ["i00", "i01", "i05"]


def test_when_seats_run_short_the_earliest_registrations_are_seated() -> None:
    interests = [interest(n, "ai", (UTRECHT,), MON) for n in (4, 2, 3, 1)]
    p = problem([room("r1", UTRECHT, 2, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)], interests,
                min_participants=1)
    assert sorted(seated_at(solved(p))) == ["i01", "i02"]


def test_registration_order_never_outweighs_travel() -> None:
    # one seat: the earlier registrant would travel to their second choice, the later one is local
    p = problem([room("near", UTRECHT, 1, MON_AM)], [facilitator("f1", {"ai"}, MON_AM)],
                [interest(1, "ai", (ZEIST, UTRECHT), MON), interest(2, "ai", (UTRECHT,), MON)], min_participants=1)
    assert sorted(seated_at(solved(p))) == ["i02"]
