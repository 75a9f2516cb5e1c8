"""Matching policies: lexicographic lists of objectives, each explained in plain words."""

from __future__ import annotations

from dataclasses import dataclass

from .model import MAX_PREFERENCES


@dataclass(frozen=True)
class Objective:
    name: str
    en: str
    nl: str
    minimise: bool = False  # as few as possible (solved as the maximum of minus it)


FIT = Objective("fit", "the total fit of all matched pairs (skills the firm asked for and other skills, both "
                       "sides' preferences, a short distance for on-site work, the firm's priority)",
                "de totale passendheid van alle gekoppelde paren (gevraagde en overige vaardigheden, de "
                "voorkeuren van beide kanten, een korte afstand bij werk op locatie, de prioriteit van het bedrijf)")
SERVED = Objective("served", "the number of assignments that get a team",
                   "het aantal opdrachten dat een team krijgt")
KEPT = Objective("kept", "the number of pairs of the published matching that stay as they were",
                 "het aantal paren uit de gepubliceerde indeling dat blijft zoals het was")


BLOCKING = Objective("blocking", "the number of blocking pairs (as few as possible)",
                     "het aantal blokkerende paren (zo weinig mogelijk)", minimise=True)


def rank_objective(rank: int) -> Objective:
    return Objective(f"rank_{rank}", f"the number of teams that get their choice number {rank}",
                     f"het aantal teams dat hun keuze nummer {rank} krijgt")


RANKS = tuple(rank_objective(r) for r in range(1, MAX_PREFERENCES + 1))


@dataclass(frozen=True)
class Policy:
    name: str
    objectives: tuple[Objective, ...]
    en: str
    nl: str
    selectable: bool = True
    stable: bool = False  # the stability rows hold as hard rules


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("max_fit", (FIT,),
           "Maximum fit: the teams are divided so that the total fit is as high as possible. An assignment "
           "can stay without a team when its teams fit better elsewhere.",
           "Maximale passendheid: de teams worden zo verdeeld dat de totale passendheid zo hoog mogelijk is. "
           "Een opdracht kan zonder team blijven als de teams elders beter passen."),
    Policy("max_served", (SERVED, FIT),
           "Most assignments served: first as many assignments as possible get a team; among the divisions "
           "that serve that many, the one with the highest total fit is chosen.",
           "Zoveel mogelijk opdrachten bemand: eerst krijgen zoveel mogelijk opdrachten een team; van de "
           "indelingen die er zoveel bemannen wordt die met de hoogste totale passendheid gekozen."),
    Policy("rank_maximal", (*RANKS, FIT),
           "Rank-maximal: first as many teams as possible get their first choice; keeping that, as many as "
           "possible get their second choice, and so on down the teams' lists (an assignment a team did not "
           "list counts as worse than any it listed). Among those divisions, the highest total fit.",
           "Rang-maximaal: eerst krijgen zoveel mogelijk teams hun eerste keuze; met behoud daarvan krijgen "
           "zoveel mogelijk teams hun tweede keuze, enzovoort (een opdracht die een team niet noemde telt als "
           "slechter dan elke genoemde). Van die indelingen die met de hoogste totale passendheid."),
    Policy("stable", (BLOCKING, FIT),
           "Stable: as few blocking pairs as possible, none when that can be. A team and an assignment that "
           "ranked each other form a blocking pair when both would gain by working together and they can be "
           "put together within the limits: the team is free in that period or ranks the assignment higher "
           "than the one it has there (it then leaves that one); the assignment has room for another team or "
           "ranks the team higher than one of its teams (that team then leaves; ties allowed: teams of one "
           "rank do not replace each other); and the move keeps the institution's number of teams and "
           "supervision hours for that period and level, the firm's maximum and one assignment per team per "
           "period. A team kept from an assignment only by such a limit is not blocking (an assignment left "
           "below its minimum, a pin or a fairness floor does not count as such a limit). Among the divisions "
           "with the fewest blocking pairs, the highest total fit; the run reports the count and the pairs.",
           "Stabiel: zo weinig mogelijk blokkerende paren, geen als dat kan. Een team en een opdracht die "
           "elkaar rangschikten vormen een blokkerend paar als zij er allebei op vooruitgaan samen te werken "
           "en binnen de grenzen samengezet kunnen worden: het team is in die periode vrij of rangschikt de "
           "opdracht hoger dan die het daar heeft (en verlaat die dan); de opdracht heeft plaats voor nog een "
           "team of rangschikt het team hoger dan een van haar teams (dat team vertrekt dan; gelijke rangen "
           "toegestaan: teams van dezelfde rang vervangen elkaar niet); en de wissel houdt het aantal teams en "
           "de begeleidingsuren van de instelling voor die periode en dat niveau, het maximum van het bedrijf "
           "en één opdracht per team per periode in stand. Een team dat alleen door zo'n grens niet bij een "
           "opdracht kan, blokkeert niet (een opdracht die onder haar minimum zakt, een vastgezet paar of een "
           "eerlijkheidsondergrens telt niet als zo'n grens). Van de indelingen met de minste blokkerende paren "
           "die met de hoogste totale passendheid; de run meldt het aantal en de paren.",
           stable=True),
    Policy("min_change", (KEPT, FIT),
           "Minimum change (re-runs after a decline): the declined pair is excluded, pairs a firm already "
           "accepted stay, as many other pairs of the published matching as possible stay as they were; then "
           "the total fit is as high as possible.",
           "Zo min mogelijk wijzigingen (herindeling na een afwijzing): het afgewezen paar valt af, paren die "
           "een bedrijf al accepteerde blijven, zoveel mogelijk andere paren uit de gepubliceerde indeling "
           "blijven staan; daarna is de totale passendheid zo hoog mogelijk.",
           selectable=False),
)}
