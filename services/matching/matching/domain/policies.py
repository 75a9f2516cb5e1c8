"""Matching policies: lexicographic lists of objectives, each explained in plain words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    en: str
    nl: str


FIT = Objective("fit", "the total fit of all matched pairs (skills the firm asked for, then other skills)",
                "de totale passendheid van alle gekoppelde paren (gevraagde vaardigheden, dan overige)")
SERVED = Objective("served", "the number of assignments that get a team",
                   "het aantal opdrachten dat een team krijgt")
KEPT = Objective("kept", "the number of pairs of the published matching that stay as they were",
                 "het aantal paren uit de gepubliceerde indeling dat blijft zoals het was")


@dataclass(frozen=True)
class Policy:
    name: str
    objectives: tuple[Objective, ...]
    en: str
    nl: str
    selectable: bool = True


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
    Policy("min_change", (KEPT, FIT),
           "Minimum change (re-runs after a decline): the declined pair is excluded, pairs a firm already "
           "accepted stay, as many other pairs of the published matching as possible stay as they were; then "
           "the total fit is as high as possible.",
           "Zo min mogelijk wijzigingen (herindeling na een afwijzing): het afgewezen paar valt af, paren die "
           "een bedrijf al accepteerde blijven, zoveel mogelijk andere paren uit de gepubliceerde indeling "
           "blijven staan; daarna is de totale passendheid zo hoog mogelijk.",
           selectable=False),
)}
