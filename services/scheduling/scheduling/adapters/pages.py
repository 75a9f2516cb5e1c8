"""HTML pages for entrepreneurs (the accept/decline page): Jinja2 templates, HTML-escaped, Dutch by
default, English on request."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .mailer import LANGUAGES, TEMPLATES
from .wording import clock, long_date

_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=True)
_env.filters.update(day=long_date, clock=clock)


def render_page(name: str, language: str | None, context: dict[str, Any]) -> str:
    lang = language if language in LANGUAGES else "nl"
    return _env.get_template(f"{name}.{lang}.html").render(**context)
