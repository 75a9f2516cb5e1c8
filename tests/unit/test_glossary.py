"""The glossary (docs/glossary.md) fixes the words people read: no text of the portal (its Dutch catalogue and
its English source texts) and no mail, invitation or page of scheduling uses a word the glossary's "not" column
forbids. A forbidden word may stand where it means something else; each such use is listed below with why."""

from __future__ import annotations

import json
import re
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "docs" / "glossary.md"
CATALOGUE = ROOT / "services" / "portal" / "portal" / "translations" / "nl.po"
TEMPLATES = ROOT / "services" / "scheduling" / "scheduling" / "templates"

# Uses of a forbidden word in another meaning than the glossary's term: (language, word) -> phrases (regular
# expressions) that are taken out of a text before it is checked.
OTHER_MEANINGS: dict[tuple[str, str], tuple[str, ...]] = {
    # the school-holiday region (noord, midden, zuid) an institution follows, not a workspace
    ("nl", "regio"): (r"^Regio$", r"schoolvakanties? van (uw|de) regio", r"kies de regio die", r"de regio is die"),
    ("en", "region"): (r"^Region$", r"School-holiday region", r"school holidays? of (your|the institution's) region",
                       r"(choose|is) the region your institution follows"),
    # the organisation an account belongs to (firm, institution or workspace staff), not the firm
    ("nl", "organisatie"): (r"\b(uw|hun) organisatie\b",),
    ("en", "organisation"): (r"%\(organisation\)s", r"\b(your|their) organisation\b"),
    # a kind of assignment: "a project (10 to 20 weeks)"
    ("nl", "project"): (r"Een project \(10 tot 20 weken\)",),
    ("en", "project"): (r"A project \(10 to 20 weeks\)",),
    # the verb (ask for) and supply against demand
    ("nl", "vraag"): (r"Vraag een nieuwe aan", r"Aanbod tegenover vraag"),
    # an HTTP request refused
    ("en", "request"): (r"The request was refused",),
    # a sign-in invitation's validity, not the answer deadline
    ("nl", "geldig tot"): (r"^Geldig tot en met$",),
    ("en", "valid until"): (r"^Valid until$",),
    # a record someone else changed meanwhile, not a meeting moved
    ("nl", "gewijzigd"): (r"intussen gewijzigd", r"niet meer worden gewijzigd"),
    # the registration at the Chamber of Commerce and an institution's capacity registrations
    ("nl", "inschrijving"): (r"inschrijving bij de Kamer van Koophandel",),
    ("en", "registration"): (r"registration at the Chamber of Commerce", r"capacity registrations?",
                             r"open for registration"),
    # school holidays, and schools in general
    ("en", "school"): (r"school[- ]holidays?", r"many schools"),
    ("en", "your contact"): (r"your contact details",),
}


def forbidden() -> dict[str, list[str]]:
    """The "not (nl / en)" column of the glossary's table, per language, without the remarks in brackets."""
    words: dict[str, list[str]] = {"nl": [], "en": []}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Nederlands", "---"):
            continue
        dutch, _, english = cells[3].partition(" / ")
        for language, column in (("nl", dutch), ("en", english)):
            for word in column.split(","):
                word = re.sub(r"\(.*?\)", "", word).strip()
                if word and word not in words[language]:
                    words[language].append(word)
    return words


def texts() -> dict[str, list[tuple[str, str]]]:
    """(where, text) of every text a person reads, per language."""
    found: dict[str, list[tuple[str, str]]] = {"nl": [], "en": []}
    with CATALOGUE.open("rb") as fh:
        for message in read_po(fh):
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
            strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
            found["en"] += [(f"nl.po msgid {ids[0]!r}", str(i)) for i in ids]
            found["nl"] += [(f"nl.po msgstr of {ids[0]!r}", str(s)) for s in strings]
    for path in sorted(TEMPLATES.iterdir()):
        for language in ("nl", "en"):
            if f".{language}." in path.name:
                found[language].append((path.name, path.read_text(encoding="utf-8")))
    for kind, subject in json.loads((TEMPLATES / "subjects.json").read_text(encoding="utf-8")).items():
        for language in ("nl", "en"):
            found[language].append((f"subjects.json {kind}", subject[language]))
    return found


def deviations(words: dict[str, list[str]], found: dict[str, list[tuple[str, str]]]) -> list[str]:
    out = []
    for language, listed in words.items():
        for word in listed:
            pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)
            for where, text in found[language]:
                for meaning in OTHER_MEANINGS.get((language, word), ()):
                    text = re.sub(meaning, "", text, flags=re.MULTILINE | re.IGNORECASE)
                if pattern.search(text):
                    out.append(f"{language} {word!r} in {where}")
    return out


def test_the_glossary_lists_forbidden_words_for_both_languages() -> None:
    words = forbidden()
    assert {"klant", "match", "herberekening", "annulering", "zonder antwoord op", "kick-off"} <= set(words["nl"])
    assert {"company", "re-run", "withdrawal", "updated", "valid until", "intro meeting"} <= set(words["en"])
    for language, word in OTHER_MEANINGS:
        assert word in words[language], f"{word!r} is not forbidden in {language}: its exception is stale"


def test_no_text_a_person_reads_uses_a_word_the_glossary_forbids() -> None:
    found = texts()
    assert len(found["nl"]) > 500 and len(found["en"]) > 500
    assert deviations(forbidden(), found) == []


def test_the_check_finds_a_forbidden_word_and_leaves_another_meaning_alone() -> None:
    words = forbidden()
    sample = {"nl": [("a", "Uw match is er!"), ("b", "Kies de regio die uw onderwijsinstelling volgt."),
                     ("c", "De werkplaats in uw regio"), ("d", "De matchingronde")],
              "en": [("e", "Your company"), ("f", "Your contact details are saved."), ("g", "The re-run")]}
    assert deviations(words, sample) == ["nl 'regio' in c", "nl 'match' in a", "en 'company' in e",
                                         "en 're-run' in g"]
