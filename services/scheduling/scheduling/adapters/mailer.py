"""Sending notices by SMTP; texts come from templates, Dutch by default, English on request."""

from __future__ import annotations

import json
import os
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from werkplaats_shared.mail import Attachment, SmtpMailer

__all__ = ["LANGUAGES", "SUBJECTS", "Attachment", "SmtpMailer", "render", "render_text"]

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")
LANGUAGES = ("nl", "en")

_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,  # noqa: S701 - plain text
                   keep_trailing_newline=True)
with open(os.path.join(TEMPLATES, "subjects.json"), encoding="utf-8") as _fh:
    SUBJECTS: dict[str, dict[str, str]] = json.load(_fh)


def render(kind: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    lang = language if language in LANGUAGES else "nl"
    return SUBJECTS[kind][lang], render_text(kind, lang, context)


def render_text(name: str, language: str, context: dict[str, Any]) -> str:
    lang = language if language in LANGUAGES else "nl"
    return _env.get_template(f"{name}.{lang}.txt").render(**context).strip("\n") + "\n"
