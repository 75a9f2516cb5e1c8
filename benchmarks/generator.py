"""Deterministic ``batch.submitted`` v2 snapshots of a national matching round, for the benchmark.

The same size, flavour and seed always give the same snapshot. Shape:

- teams of MBO, HBO and WO institutions (about 45/35/20%), each institution with one to three
  campuses in real Dutch municipalities (WO only in university cities, HBO in the larger towns);
- skills from the theme catalogue (a small list per theme); a team knows two to four skills of one
  theme and sometimes one of another; an assignment requires one or two skills of its theme;
- two periods; each team registers for one, each assignment is in one;
- firms (some with two or three assignments) spread over 63 towns by population;
  on-site, hybrid and remote work; priorities; optional ranked wishes on both sides;
- institution capacity per period and level below the number of registered teams, so it binds.

Eligible pairs are held near ``pairs_per_team`` (40: about 400,000 at 10k teams, as in the issue's
reference instance, and about 2 million at 50k): the travel limits are scaled per instance by
bisection on a sampled pair count, and the share of remote work shrinks as the round grows, as if a
national round were many regional ones. Small rounds fall short (about 10 per team at 1k: even the
longest allowed limit reaches too few assignments). ``pairs_by_contract_rules`` counts pairs the
way the optimiser's eligibility is specified (services/matching/matching/domain/model.py).

Flavours: ``network`` has team, assignment and institution capacities only (every assignment's
minimum is one team, no supervision hours needed, no floors, no firm caps): its LP relaxation is
integral and a min-cost flow solves it. ``side`` adds what breaks that structure: assignments that
need two teams or none, lecturer supervision hours, fairness floors and firm caps. ``hours`` is the
``network`` round with supervision hours, its only side rows (as in the rounds coordinators run, issue
20): 8, 12, 16 or 24 per assignment, as the side flavour draws them, and ``hours_per_team`` (20 by
default) per team of an institution's capacity. They can bind (an assignment may need 24), so the rows
are not redundant; at 20 the best matching keeps them at 300 teams (issue 20's "same objective"), at
10,000 it breaks a few rows even at 23, and at 14 the hours bind hard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from werkplaats_shared import geo

SIZES = {"1k": 1_000, "10k": 10_000, "50k": 50_000}
FLAVOURS = ("network", "side", "hours")
HOURS_PER_TEAM = 20.0  # the hours flavour's supervision hours per team of a capacity
PERIODS = ("2027-S1", "2027-S2")
LEVELS = ("MBO", "HBO", "WO")
LEVEL_SHARE = (0.45, 0.35, 0.20)
# Institutions per level in a 10k round (and at most, for larger rounds): about the Dutch numbers.
INSTITUTIONS_AT_10K = {"MBO": 60, "HBO": 36, "WO": 14}

THEME_SKILLS: dict[str, tuple[str, ...]] = {
    "website": ("html-css", "wordpress", "ux", "accessibility", "seo"),
    "webshop": ("woocommerce", "shopify", "online-payments", "product-photography", "stock-integration"),
    "online_marketing": ("social-media", "content", "search-ads", "newsletters", "web-analytics"),
    "data_automation": ("spreadsheets", "dashboards", "python", "sql", "process-automation"),
    "cyber_security": ("security-scan", "phishing-awareness", "backups", "network-security", "privacy-gdpr"),
    "ai": ("chatbots", "machine-learning", "prompting", "computer-vision", "ai-policy"),
    "digital_roadmap": ("business-analysis", "process-mapping", "it-procurement", "change-management",
                        "cloud-migration"),
}
THEMES = tuple(THEME_SKILLS)
THEME_WEIGHTS = (0.22, 0.16, 0.18, 0.14, 0.12, 0.10, 0.08)
SKILLS = tuple(s for skills in THEME_SKILLS.values() for s in skills)

# Towns that get campuses and firms, weighted by inhabitants (thousands); names, provinces and centres
# come from werkplaats_shared.geo (data/municipalities.csv).
TOWNS: tuple[tuple[str, int], ...] = (
    ("GM0363", 930),  # Amsterdam
    ("GM0599", 670),  # Rotterdam
    ("GM0518", 560),  # 's-Gravenhage
    ("GM0344", 370),  # Utrecht
    ("GM0772", 240),  # Eindhoven
    ("GM0014", 240),  # Groningen
    ("GM0855", 225),  # Tilburg
    ("GM0034", 220),  # Almere
    ("GM0758", 185),  # Breda
    ("GM0268", 180),  # Nijmegen
    ("GM0200", 165),  # Apeldoorn
    ("GM0202", 165),  # Arnhem
    ("GM0392", 165),  # Haarlem
    ("GM0394", 160),  # Haarlemmermeer
    ("GM0153", 160),  # Enschede
    ("GM0307", 160),  # Amersfoort
    ("GM0479", 160),  # Zaanstad
    ("GM0796", 160),  # 's-Hertogenbosch
    ("GM0193", 130),  # Zwolle
    ("GM0546", 125),  # Leiden
    ("GM0637", 125),  # Zoetermeer
    ("GM0080", 125),  # Leeuwarden
    ("GM0935", 120),  # Maastricht
    ("GM0505", 120),  # Dordrecht
    ("GM0228", 120),  # Ede
    ("GM0361", 110),  # Alkmaar
    ("GM0114", 107),  # Emmen
    ("GM0503", 105),  # Delft
    ("GM0983", 102),  # Venlo
    ("GM0150", 101),  # Deventer
    ("GM0794", 93),  # Helmond
    ("GM0828", 93),  # Oss
    ("GM0362", 92),  # Amstelveen
    ("GM0402", 92),  # Hilversum
    ("GM1883", 91),  # Sittard-Geleen
    ("GM1900", 90),  # Súdwest-Fryslân
    ("GM0917", 87),  # Heerlen
    ("GM0164", 81),  # Hengelo
    ("GM0995", 80),  # Lelystad
    ("GM1674", 78),  # Roosendaal
    ("GM0405", 74),  # Hoorn
    ("GM0513", 74),  # Gouda
    ("GM0141", 73),  # Almelo
    ("GM0106", 69),  # Assen
    ("GM0748", 68),  # Bergen op Zoom
    ("GM0222", 58),  # Doetinchem
    ("GM0957", 58),  # Roermond
    ("GM0826", 56),  # Oosterhout
    ("GM0400", 56),  # Den Helder
    ("GM0118", 55),  # Hoogeveen
    ("GM0166", 54),  # Kampen
    ("GM0715", 54),  # Terneuzen
    ("GM0074", 51),  # Heerenveen
    ("GM0687", 49),  # Middelburg
    ("GM0243", 48),  # Harderwijk
    ("GM0301", 48),  # Zutphen
    ("GM1979", 45),  # Eemsdelta
    ("GM0718", 45),  # Vlissingen
    ("GM0281", 42),  # Tiel
    ("GM0664", 39),  # Goes
    ("GM0289", 39),  # Wageningen
    ("GM0119", 34),  # Meppel
    ("GM0047", 28),  # Veendam
)
UNIVERSITY_TOWNS = ("GM0363", "GM0599", "GM0546", "GM0503", "GM0344", "GM0014", "GM0268", "GM0772",
                    "GM0855", "GM0935", "GM0153", "GM0289")
HBO_MIN_INHABITANTS = 70  # thousands

# Travel limits (km) by level before calibration (see _calibrate_travel).
TRAVEL_KM = {"MBO": 35.0, "HBO": 45.0, "WO": 60.0}
CALIBRATION_SAMPLE = 1_500
REMOTE_SHARE_AT_10K = 0.04  # assignments done fully remotely
HYBRID_SHARE = 0.25
REMOTE_ALLOWED_AT_10K = 0.05  # teams that may work remotely (reach every hybrid assignment)
# Floors of the side flavour: provinces whose assignments must be served at least this share.
FLOOR_REGIONS = ("Zeeland", "Drenthe", "Groningen")


@dataclass(frozen=True)
class Place:
    code: str
    province: str
    latitude: float
    longitude: float
    inhabitants: int  # thousands


@cache
def places() -> tuple[Place, ...]:
    known = geo.municipalities()
    return tuple(Place(code, known[code].province, known[code].latitude, known[code].longitude, inhabitants)
                 for code, inhabitants in TOWNS)


def size_of(name: str) -> int:
    """``1k``, ``10k``, ``50k`` or a plain number of teams."""
    if name in SIZES:
        return SIZES[name]
    try:
        teams = int(name)
    except ValueError:
        raise ValueError(f"size {name!r}: one of {', '.join(SIZES)} or a number of teams") from None
    if teams < 10:
        raise ValueError(f"size {name!r}: at least 10 teams")
    return teams


@dataclass(frozen=True)
class Density:
    remote_share: float
    remote_allowed_share: float


def _density(teams: int) -> Density:
    """Less remote work as the round grows, so that nationwide pairs do not grow with its square."""
    factor = math.sqrt(10_000 / teams)
    return Density(remote_share=min(0.15, REMOTE_SHARE_AT_10K * factor),
                   remote_allowed_share=min(0.3, REMOTE_ALLOWED_AT_10K * factor))


def _distances_km(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p, q = np.radians(lat), np.radians(lon)
    dp = p[:, None] - p[None, :]
    dq = q[:, None] - q[None, :]
    h = np.sin(dp / 2) ** 2 + np.cos(p)[:, None] * np.cos(p)[None, :] * np.sin(dq / 2) ** 2
    distance: npt.NDArray[np.float64] = 2 * 6371.0 * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return distance


def _skill_mask(skills: list[str]) -> int:
    return sum(1 << SKILLS.index(s) for s in skills)


@dataclass
class _Arrays:
    """The instance as arrays, for picking wishes and counting eligible pairs."""

    distance: npt.NDArray[np.float64]  # municipality x municipality
    team_level: npt.NDArray[np.int64]
    team_period: npt.NDArray[np.int64]
    team_place: npt.NDArray[np.int64]
    team_skills: npt.NDArray[np.uint64]
    team_limit: npt.NDArray[np.float64]  # inf: no limit
    team_remote: npt.NDArray[np.bool_]
    assignment_levels: npt.NDArray[np.bool_]  # assignment x level
    assignment_period: npt.NDArray[np.int64]
    assignment_place: npt.NDArray[np.int64]
    assignment_required: npt.NDArray[np.uint64]
    assignment_mode: npt.NDArray[np.int64]  # 0 on_site, 1 hybrid, 2 remote
    assignment_in_area: npt.NDArray[np.bool_]

    def eligible_teams(self, a: int) -> npt.NDArray[np.bool_]:
        """Teams that may work on assignment ``a`` under the optimiser's eligibility rules."""
        required = self.assignment_required[a]
        mask: npt.NDArray[np.bool_] = (self.assignment_levels[a][self.team_level]
                & (self.team_period == self.assignment_period[a])
                & ((self.team_skills & required) == required))
        mode = int(self.assignment_mode[a])
        if mode == 2:
            return mask
        if not self.assignment_in_area[a]:
            return mask & False
        near: npt.NDArray[np.bool_] = self.distance[self.team_place, self.assignment_place[a]] <= self.team_limit
        if mode == 1:
            near = near | self.team_remote
        return mask & near

    def pair_count(self) -> int:
        return int(sum(int(self.eligible_teams(a).sum()) for a in range(len(self.assignment_period))))


MODE_CODES = {"on_site": 0, "hybrid": 1, "remote": 2}


def _arrays(snapshot: dict[str, Any]) -> _Arrays:
    index = {p.code: i for i, p in enumerate(places())}
    codes = [p.code for p in places()]
    lat = np.array([p.latitude for p in places()])
    lon = np.array([p.longitude for p in places()])
    for item in (*snapshot["teams"], *snapshot["assignments"]):
        code = item["municipality"]
        if code is not None and code not in index:
            index[code] = len(codes)
            codes.append(code)
            lat = np.append(lat, item["latitude"])
            lon = np.append(lon, item["longitude"])
    teams, assignments = snapshot["teams"], snapshot["assignments"]
    area = set(snapshot["working_area"])
    period_index = {p: i for i, p in enumerate(sorted({t["periods"][0] for t in teams}
                                                      | {a["period"] for a in assignments}))}
    if any(len(t["periods"]) != 1 for t in teams):
        raise ValueError("pair counting supports teams with one period only")
    return _Arrays(
        distance=_distances_km(lat, lon),
        team_level=np.array([LEVELS.index(t["level"]) for t in teams], dtype=np.int64),
        team_period=np.array([period_index[t["periods"][0]] for t in teams], dtype=np.int64),
        team_place=np.array([index[t["municipality"]] for t in teams], dtype=np.int64),
        team_skills=np.array([_skill_mask(t["skills"]) for t in teams], dtype=np.uint64),
        team_limit=np.array([math.inf if t["travel_limit_km"] is None else t["travel_limit_km"]
                             for t in teams], dtype=np.float64),
        team_remote=np.array([t["remote_allowed"] for t in teams], dtype=np.bool_),
        assignment_levels=np.array([[lv in a["accepted_levels"] for lv in LEVELS] for a in assignments],
                                   dtype=np.bool_).reshape(len(assignments), len(LEVELS)),
        assignment_period=np.array([period_index[a["period"]] for a in assignments], dtype=np.int64),
        assignment_place=np.array([index[a["municipality"]] for a in assignments], dtype=np.int64),
        assignment_required=np.array([_skill_mask(a["required_skills"]) for a in assignments], dtype=np.uint64),
        assignment_mode=np.array([MODE_CODES[a["mode"]] for a in assignments], dtype=np.int64),
        assignment_in_area=np.array([not area or a["municipality"] in area for a in assignments],
                                    dtype=np.bool_),
    )


def pairs_by_contract_rules(snapshot: dict[str, Any]) -> int:
    """How many pairs are eligible under the rules the optimiser documents (level, required skills,
    period, reach by mode and travel limit, working area). The generator's yardstick; the benchmark
    itself always uses the optimiser's own eligibility."""
    return _arrays(snapshot).pair_count()


ACCEPTED_LEVELS = ((("MBO",), 0.20), (("HBO",), 0.15), (("WO",), 0.07), (("MBO", "HBO"), 0.30),
                   (("HBO", "WO"), 0.18), (("MBO", "HBO", "WO"), 0.10))


def _calibrate_travel(arrays: _Arrays, reach: npt.NDArray[np.float64], pairs_per_team: float, seed: int
                      ) -> npt.NDArray[np.int64]:
    """Travel limits (whole km) ``reach * scale``, with the scale found by bisection so that eligible
    pairs per team come near ``pairs_per_team`` (counted on a sample of assignments)."""
    n_assignments = len(arrays.assignment_period)
    sample = np.random.default_rng([seed, 7]).permutation(n_assignments)[:CALIBRATION_SAMPLE]
    weight = n_assignments / len(sample) / len(reach)

    def limits(scale: float) -> npt.NDArray[np.int64]:
        return np.maximum(1, np.rint(reach * scale)).astype(np.int64)

    def per_team(scale: float) -> float:
        arrays.team_limit = limits(scale).astype(np.float64)
        return weight * sum(int(arrays.eligible_teams(int(a)).sum()) for a in sample)

    low, high = math.log(0.05), math.log(3.0)
    for _ in range(14):
        middle = (low + high) / 2
        if per_team(math.exp(middle)) < pairs_per_team:
            low = middle
        else:
            high = middle
    return limits(math.exp((low + high) / 2))


def generate(teams: int, *, assignments: int | None = None, flavour: str = "network", seed: int = 1,
             pairs_per_team: float = 40.0, hours_per_team: float = HOURS_PER_TEAM) -> dict[str, Any]:
    """A ``batch.submitted`` v2 payload with ``teams`` teams and (by default) half as many assignments;
    travel limits are set so that about ``pairs_per_team`` pairs per team are eligible. ``hours_per_team``:
    the hours flavour's supervision hours per team of a capacity."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour {flavour!r}: one of {', '.join(FLAVOURS)}")
    if teams < 10:
        raise ValueError("teams: at least 10")
    n_assignments = teams // 2 if assignments is None else assignments
    if n_assignments < 1:
        raise ValueError("assignments: at least 1")
    # the hours flavour is the network one's round (the same draws) with supervision hours drawn apart at the end
    drawn_as = "network" if flavour == "hours" else flavour
    rng = np.random.default_rng([seed, teams, n_assignments, FLAVOURS.index(drawn_as)])
    side = flavour == "side"
    density = _density(teams)

    towns = places()
    codes = [p.code for p in towns]
    inhabitants = np.array([p.inhabitants for p in towns], dtype=np.float64)
    lat = np.array([p.latitude for p in towns])
    lon = np.array([p.longitude for p in towns])
    distance = _distances_km(lat, lon)

    # ---- institutions and their campuses
    institutions: list[dict[str, Any]] = []
    for level in LEVELS:
        count = max(2, min(INSTITUTIONS_AT_10K[level], round(INSTITUTIONS_AT_10K[level] * teams / 10_000)))
        if level == "WO":
            allowed = np.array([c in UNIVERSITY_TOWNS for c in codes])
        elif level == "HBO":
            allowed = inhabitants >= HBO_MIN_INHABITANTS
        else:
            allowed = np.ones(len(codes), dtype=bool)
        weights = np.where(allowed, inhabitants, 0.0)
        for _ in range(count):
            home = int(rng.choice(len(codes), p=weights / weights.sum()))
            nearby = [i for i in np.argsort(distance[home]) if i != home and distance[home, i] <= 50][:6]
            extra = min(len(nearby), int(rng.integers(0, 3)))
            campuses = [home, *(int(i) for i in rng.choice(nearby, size=extra, replace=False))] if extra else [home]
            institutions.append({"id": f"inst-{len(institutions) + 1:03d}", "level": level, "home": home,
                                 "campuses": campuses, "size": float(rng.gamma(2.0))})

    # ---- teams
    team_level = rng.choice(len(LEVELS), size=teams, p=LEVEL_SHARE)
    team_inst = np.empty(teams, dtype=np.int64)
    for li, level in enumerate(LEVELS):
        members = [i for i, inst in enumerate(institutions) if inst["level"] == level]
        sizes = np.array([institutions[i]["size"] for i in members])
        idx = np.flatnonzero(team_level == li)
        team_inst[idx] = np.array(members)[rng.choice(len(members), size=len(idx), p=sizes / sizes.sum())]
    team_period = rng.integers(0, len(PERIODS), size=teams)
    team_theme = rng.choice(len(THEMES), size=teams, p=THEME_WEIGHTS)
    team_remote = rng.random(teams) < density.remote_allowed_share
    team_reach = np.empty(teams, dtype=np.float64)
    team_rows: list[dict[str, Any]] = []
    for i in range(teams):
        inst = institutions[int(team_inst[i])]
        place = int(rng.choice(inst["campuses"]))
        theme = THEMES[int(team_theme[i])]
        own = THEME_SKILLS[theme]
        skills = [own[j] for j in sorted(rng.choice(len(own), size=int(rng.integers(2, 5)), replace=False))]
        if rng.random() < 0.4:
            other = THEME_SKILLS[THEMES[int(rng.choice([t for t in range(len(THEMES)) if THEMES[t] != theme]))]]
            skills.append(other[int(rng.integers(len(other)))])
        level = LEVELS[int(team_level[i])]
        team_reach[i] = TRAVEL_KM[level] * float(rng.uniform(0.75, 1.25))
        team_rows.append({
            "team_id": f"team-{i + 1:06d}", "institution_id": inst["id"], "level": level, "skills": skills,
            "periods": [PERIODS[int(team_period[i])]], "municipality": codes[place],
            "latitude": float(lat[place]), "longitude": float(lon[place]), "region": towns[place].province,
            "travel_limit_km": None, "remote_allowed": bool(team_remote[i]), "preferences": [],
        })

    # ---- firms and assignments
    firm_places: list[int] = []
    firm_of: list[int] = []
    while len(firm_of) < n_assignments:
        firm = len(firm_places)
        firm_places.append(int(rng.choice(len(codes), p=inhabitants / inhabitants.sum())))
        count = 1 if rng.random() >= 0.15 else int(rng.integers(2, 4))
        firm_of.extend([firm] * count)
    firm_of = firm_of[:n_assignments]
    modes = rng.choice(3, size=n_assignments, p=(1 - HYBRID_SHARE - density.remote_share, HYBRID_SHARE,
                                                 density.remote_share))
    level_sets = rng.choice(len(ACCEPTED_LEVELS), size=n_assignments, p=[w for _, w in ACCEPTED_LEVELS])
    themes = rng.choice(len(THEMES), size=n_assignments, p=THEME_WEIGHTS)
    assignment_rows: list[dict[str, Any]] = []
    for a in range(n_assignments):
        place = firm_places[firm_of[a]]
        theme = THEMES[int(themes[a])]
        own = THEME_SKILLS[theme]
        picked = [own[j] for j in rng.permutation(len(own))]
        n_required = 1 if rng.random() < 0.6 else 2
        required, rest = picked[:n_required], picked[n_required:]
        nice = rest[:int(rng.integers(0, 3))]
        if rng.random() < 0.25:
            other = THEME_SKILLS[THEMES[int(rng.choice([t for t in range(len(THEMES)) if THEMES[t] != theme]))]]
            nice.append(other[int(rng.integers(len(other)))])
        accepted = list(ACCEPTED_LEVELS[int(level_sets[a])][0])
        if side:
            min_teams = 1 if rng.random() < 0.7 else 2
            max_teams = min_teams + int(rng.integers(0, 2))
        else:
            min_teams = 1
            max_teams = int(rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05]))
        roll = rng.random()
        priority = 0 if roll < 0.75 else int(rng.integers(1, 6)) if roll < 0.95 else int(rng.integers(6, 11))
        assignment_rows.append({
            "assignment_id": f"asg-{a + 1:06d}", "firm_id": f"firm-{firm_of[a] + 1:06d}",
            "accepted_levels": accepted, "required_skills": required, "nice_to_have_skills": nice,
            "min_teams": min_teams, "max_teams": max_teams, "period": PERIODS[int(rng.integers(len(PERIODS)))],
            "mode": ("on_site", "hybrid", "remote")[int(modes[a])], "municipality": codes[place],
            "latitude": float(lat[place]), "longitude": float(lon[place]), "region": towns[place].province,
            "priority": priority, "supervision_hours": int(rng.choice([8, 12, 16, 24])) if side else 0,
            "preferred_institutions": [], "preferred_levels": [],
        })

    snapshot: dict[str, Any] = {
        "batch_id": f"bench-{teams}-{flavour}-{seed}", "workspace_id": "ws-national",
        "coordinator_id": "coordinator-bench", "period": PERIODS[0], "policy": "max_fit", "auto_publish": False,
        "working_area": list(codes), "assignments": assignment_rows, "teams": team_rows,
        "capacities": [], "firm_caps": [], "fairness_floors": [],
    }

    # ---- wishes: some firms rank institutions near them, or levels; some teams rank assignments
    homes = np.array([inst["home"] for inst in institutions])
    for a, row in enumerate(assignment_rows):
        if rng.random() < 0.15:
            order = np.argsort(distance[firm_places[firm_of[a]], homes], kind="stable")
            near = [institutions[int(i)]["id"] for i in order[:5]
                    if institutions[int(i)]["level"] in row["accepted_levels"]]
            row["preferred_institutions"] = near[:int(rng.integers(1, 4))]
        if rng.random() < 0.25:
            row["preferred_levels"] = [str(lv) for lv in rng.permutation(row["accepted_levels"])]
    arrays = _arrays(snapshot)
    limits = _calibrate_travel(arrays, team_reach, pairs_per_team, seed)
    arrays.team_limit = limits.astype(np.float64)
    for row, limit in zip(team_rows, limits, strict=True):
        row["travel_limit_km"] = int(limit)
    candidates: list[list[int]] = [[] for _ in range(teams)]
    for a in range(n_assignments):
        for t in np.flatnonzero(arrays.eligible_teams(a)):
            candidates[int(t)].append(a)
    for t_index, row in enumerate(team_rows):
        if candidates[t_index] and rng.random() < 0.2:
            count = min(len(candidates[t_index]), int(rng.integers(1, 4)))
            row["preferences"] = [assignment_rows[int(a)]["assignment_id"]
                                  for a in rng.choice(candidates[t_index], size=count, replace=False)]

    # ---- capacity per institution, period and level; side constraints
    registered: dict[tuple[str, str, str], int] = {}
    for row in team_rows:
        key = (row["institution_id"], row["periods"][0], row["level"])
        registered[key] = registered.get(key, 0) + 1
    for (inst_id, period, level), count in sorted(registered.items()):
        cap = max(1, round(count * float(rng.uniform(0.35, 0.9))))
        hours = cap * (int(rng.integers(12, 25)) if side else 40)
        snapshot["capacities"].append({"institution_id": inst_id, "period": period, "level": level,
                                       "teams": cap, "supervision_hours": hours})
    if side:
        per_firm: dict[str, int] = {}
        for row in assignment_rows:
            per_firm[row["firm_id"]] = per_firm.get(row["firm_id"], 0) + 1
        snapshot["firm_caps"] = [{"firm_id": firm, "max_teams": int(rng.integers(1, count + 1))}
                                 for firm, count in sorted(per_firm.items()) if count > 1]
        snapshot["fairness_floors"] = [
            *({"dimension": "region", "value": region, "min_share": 0.3} for region in FLOOR_REGIONS
              if any(r["region"] == region for r in assignment_rows)),
            {"dimension": "level", "value": "MBO", "min_share": 0.15},
        ]
    if flavour == "hours":
        drawn = np.random.default_rng([seed, teams, n_assignments, FLAVOURS.index("hours")])
        for row in assignment_rows:
            row["supervision_hours"] = int(drawn.choice([8, 12, 16, 24]))
        for cap_row in snapshot["capacities"]:
            cap_row["supervision_hours"] = round(cap_row["teams"] * hours_per_team)
    return snapshot
