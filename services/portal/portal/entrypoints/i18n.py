"""Languages: Dutch by default, English by choice, remembered per person.

Every text of the portal is written in English in the code and templates and translated in one catalogue per
language (``translations/<language>.po``, read with Babel at start: no compile step). English needs no
translation: its catalogue is the texts themselves. Dates and numbers follow the reader's conventions (Babel's
locale data), periods read as words (domain.periods)."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from flask import Flask, g, session

from ..domain.periods import period_label

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
LOCALES = {"nl": "nl_NL", "en": "en_GB"}
TIME_ZONE = ZoneInfo("Europe/Amsterdam")


@cache
def catalogue(language: str) -> dict[str, Any]:
    """msgid -> translation (a string, or a tuple of plural forms) of the language's catalogue."""
    if language == "en":
        return {}
    with resources.files("portal").joinpath(f"translations/{language}.po").open("rb") as fh:
        parsed = read_po(fh, locale=LOCALES[language])
    texts: dict[str, Any] = {}
    for message in parsed:
        if not message.id or not message.string:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        texts[key] = tuple(message.string) if isinstance(message.string, tuple | list) else message.string
    return texts


def current_language() -> str:
    language = g.get("language") or session.get("language") or DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def gettext(text: str, **variables: Any) -> str:
    translated = catalogue(current_language()).get(text, text)
    if isinstance(translated, tuple):
        translated = translated[0]
    return str(translated % variables if variables else translated)


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    translated = catalogue(current_language()).get(singular)
    if isinstance(translated, tuple):
        text = translated[0] if n == 1 else translated[-1]
    else:
        text = singular if n == 1 else plural
    return str(text % {"num": n, **variables})


_ = gettext


def _as_date(value: date | datetime | str) -> date | datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return value


def nice_date(value: date | datetime | str | None) -> str:
    if not isinstance(value, date | str) or value == "":
        return ""
    found = _as_date(value)  # type: ignore[arg-type]
    if isinstance(found, datetime):
        found = found.astimezone(TIME_ZONE).date() if found.tzinfo else found.date()
    return format_date(found, "long", locale=LOCALES[current_language()])


def nice_datetime(value: datetime | str | None) -> str:
    if not isinstance(value, date | str) or value == "":
        return ""
    found = _as_date(value)  # type: ignore[arg-type]
    if not isinstance(found, datetime):
        return nice_date(found)
    local = found.astimezone(TIME_ZONE) if found.tzinfo else found
    language = current_language()
    day = format_date(local.date(), "full", locale=LOCALES[language])
    clock = format_time(local.time(), "HH:mm", locale=LOCALES[language])
    return f"{day}, {clock}"


def nice_number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALES[current_language()])


def nice_period(code: str | None) -> str:
    return period_label(code or "", current_language())


def install_i18n(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    app.jinja_env.filters.update(date=nice_date, datetime=nice_datetime, number=nice_number, period=nice_period)
    app.jinja_env.globals.update(current_language=current_language, format_datetime=format_datetime)
