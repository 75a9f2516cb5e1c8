"""Sending notices by SMTP; texts come from templates, Dutch by default, English on request. Every mail has a
plain-text part and an HTML part made from it (same words, inline styles only, no remote images)."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from html import escape
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from werkplaats_shared.mail import Attachment, SmtpMailer

from .wording import clock, long_date

__all__ = ["LANGUAGES", "SUBJECTS", "Attachment", "SmtpMailer", "html_body", "render", "render_text"]

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")
LANGUAGES = ("nl", "en")

_env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,  # noqa: S701 - plain text
                   keep_trailing_newline=True)
_env.filters.update(day=long_date, clock=clock)
with open(os.path.join(TEMPLATES, "subjects.json"), encoding="utf-8") as _fh:
    SUBJECTS: dict[str, dict[str, str]] = json.load(_fh)


@cache
def _subject(kind: str, language: str) -> Template:
    """A subject line's template, compiled once (compiling took longer than the rest of a mail)."""
    return _env.from_string(SUBJECTS[kind][language])


def render(kind: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    lang = language if language in LANGUAGES else "nl"
    subject = _subject(kind, lang).render(**context).strip()
    return subject, render_text(kind, lang, context)


def render_text(name: str, language: str, context: dict[str, Any]) -> str:
    lang = language if language in LANGUAGES else "nl"
    return _env.get_template(f"{name}.{lang}.txt").render(**context).strip("\n") + "\n"


_URL = re.compile(r"https?://[^\s<>\"]+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_LINK = 'style="color:#0b5394;text-decoration:underline"'


def _inline(line: str) -> str:
    """One line of text as HTML: escaped, with its web and e-mail addresses as links."""
    out, at = [], 0
    spans = sorted([(m.start(), m.end(), m.group(), "url") for m in _URL.finditer(line)]
                   + [(m.start(), m.end(), m.group(), "mail") for m in _EMAIL.finditer(line)
                      if not any(u.start() <= m.start() < u.end() for u in _URL.finditer(line))])
    for start, end, text, kind in spans:
        if start < at:
            continue
        out.append(escape(line[at:start]))
        href = text if kind == "url" else f"mailto:{text}"
        out.append(f'<a href="{escape(href)}" {_LINK}>{escape(text)}</a>')
        at = end
    out.append(escape(line[at:]))
    return "".join(out)


def html_body(text: str, subject: str, language: str) -> str:
    """The HTML part of a mail: the plain text's paragraphs, "- " lines as a list, "Label: value" lines as
    a definition-like list, links clickable; inline styles only, no images."""
    lang = language if language in LANGUAGES else "nl"
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f'<li style="margin:0 0 6px 0">{_inline(line[2:])}</li>' for line in lines)
            blocks.append(f'<ul style="margin:0 0 16px 0;padding-left:20px">{items}</ul>')
        else:
            blocks.append('<p style="margin:0 0 16px 0">' + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    body = "\n".join(blocks)
    return (f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(subject)}</title>\n'
            f'</head>\n<body style="margin:0;padding:0;background:#ffffff">\n'
            f'<div style="max-width:600px;margin:0 auto;padding:24px 16px;font-family:Arial,Helvetica,sans-serif;'
            f'font-size:16px;line-height:1.5;color:#1a1a1a">\n{body}\n</div>\n</body>\n</html>\n')
