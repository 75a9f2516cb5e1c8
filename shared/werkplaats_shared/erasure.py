"""What erasure needs in every service: the skill vocabulary, and scrubbing of stored copies.

Skills are typed by institutions (a team's skills) and firms (an assignment's required and nice-to-have
skills) and copied into messages, matching's snapshots, its explanations, pre-checks and diagnoses. A skill
of the vocabulary below (the workspace themes and the skills of each theme) is a word of the catalogue and
cannot hold personal data: it stays when its team or firm is erased, so an erased team keeps its place in a
re-run. Any other skill is free text and may hold anything; erasure removes it from every copy:

- ``drop_free_skills`` removes the free-text skills of the erased teams and firms from any stored structure
  (a snapshot, a message payload): every mapping with the subject's ``team_id`` (``skills``) or ``firm_id``
  (``required_skills``, ``nice_to_have_skills``), at any depth, and returns the removed texts;
- ``scrub_texts`` replaces those texts wherever else they were copied (explanations, pre-check cells,
  diagnoses, audit details): a string equal to one becomes ``[erased]``, a sentence that contains one gets
  each occurrence replaced.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

ERASED = "[erased]"

# The workspace themes (intake's THEMES) and the skills of each theme.
THEME_SKILLS: dict[str, tuple[str, ...]] = {
    "website": ("html-css", "wordpress", "ux", "accessibility", "seo", "web", "javascript", "js"),
    "webshop": ("woocommerce", "shopify", "online-payments", "product-photography", "stock-integration"),
    "online_marketing": ("social-media", "content", "search-ads", "newsletters", "web-analytics", "marketing"),
    "data_automation": ("spreadsheets", "dashboards", "python", "sql", "process-automation", "data"),
    "cyber_security": ("security-scan", "phishing-awareness", "backups", "network-security", "privacy-gdpr",
                       "security"),
    "ai": ("chatbots", "machine-learning", "prompting", "computer-vision", "ai-policy"),
    "digital_roadmap": ("business-analysis", "process-mapping", "it-procurement", "change-management",
                        "cloud-migration"),
}
SKILL_VOCABULARY: frozenset[str] = frozenset(THEME_SKILLS) | frozenset(
    skill for skills in THEME_SKILLS.values() for skill in skills)

TEAM_SKILL_FIELDS = ("skills",)
FIRM_SKILL_FIELDS = ("required_skills", "nice_to_have_skills")


def is_vocabulary_skill(skill: str) -> bool:
    return skill.strip().lower() in SKILL_VOCABULARY


def free_skills(skills: Iterable[Any]) -> list[str]:
    """The skills that are not words of the vocabulary (free text that may hold personal data)."""
    return [s for s in skills if isinstance(s, str) and not is_vocabulary_skill(s)]


def vocabulary_skills(skills: Iterable[Any]) -> list[Any]:
    return [s for s in skills if not (isinstance(s, str) and not is_vocabulary_skill(s))]


def drop_free_skills(value: Any, team_ids: Collection[str] = (),
                     firm_ids: Collection[str] = ()) -> tuple[Any, set[str]]:
    """``value`` with the free-text skills of the given teams and firms removed at any depth, and the texts
    removed. ``value`` itself is not changed."""
    removed: set[str] = set()
    containers = (dict, list, tuple)

    def relevant(item: Any) -> bool:
        """Whether a list item may hold something to drop: a mapping of a subject, or one with mappings
        inside. A snapshot's other teams and assignments (flat mappings) are passed over unvisited."""
        if not isinstance(item, dict):
            return isinstance(item, (list, tuple))
        if item.get("team_id") in team_ids or item.get("firm_id") in firm_ids:
            return True
        return any(isinstance(v, dict) or (isinstance(v, (list, tuple)) and v and isinstance(v[0], (dict, list)))
                   for v in item.values())

    def walk(node: Any) -> Any:
        """The node with the skills dropped; the very same object when nothing under it changed (a round's
        snapshot holds thousands of teams: only the subject's entries are copied)."""
        if isinstance(node, (list, tuple)):
            items = [walk(item) if relevant(item) else item for item in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) and isinstance(node, list) else items
        if not isinstance(node, dict):
            return node
        out: dict[Any, Any] | None = None
        for key, item in node.items():
            if isinstance(item, containers):
                new = walk(item)
                if new is not item:
                    out = dict(node) if out is None else out
                    out[key] = new
        fields: tuple[str, ...] = ()
        if node.get("team_id") in team_ids:
            fields += TEAM_SKILL_FIELDS
        if node.get("firm_id") in firm_ids:
            fields += FIRM_SKILL_FIELDS
        for name in fields:
            current = (out or node).get(name)
            if isinstance(current, list) and free_skills(current):
                removed.update(free_skills(current))
                out = dict(node) if out is None else out
                out[name] = vocabulary_skills(current)
        return node if out is None else out

    return walk(value), removed


def scrub_texts(value: Any, texts: Collection[str]) -> Any:
    """``value`` with every string equal to one of ``texts`` (dictionary keys included) replaced by
    ``[erased]``, and in strings with a space (sentences) each occurrence of a text of 3 or more characters
    replaced. Ids and codes are only ever replaced whole, so a short text never cuts one up."""
    wanted = {t for t in texts if t and t != ERASED}
    if not wanted:
        return value
    inner = sorted((t for t in wanted if len(t) >= 3), key=len, reverse=True)

    def text(s: str) -> str:
        if s in wanted:
            return ERASED
        if " " in s:
            for t in inner:
                if t in s:
                    s = s.replace(t, ERASED)
        return s

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, (list, tuple)):  # a tuple not yet stored (a score breakdown) is stored as a list
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {text(k) if isinstance(k, str) else k: walk(item) for k, item in node.items()}
        return node

    return walk(value)


def stored_forms(texts: Iterable[str]) -> list[str]:
    """Each text as it may appear in stored JSON (escaped non-ASCII, quotes or backslashes, or as is): the
    patterns a database search for rows that hold one of the texts must try."""
    forms = set()
    for text in texts:
        forms.update({text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]})
    return sorted(f for f in forms if f)


def scrub_json_text(body: str, texts: Collection[str], team_ids: Collection[str] = (),
                    firm_ids: Collection[str] = ()) -> str:
    """A JSON document (an outbox row's body) with the subjects' free-text skills dropped and the texts
    scrubbed; the same string when nothing changed."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    dropped, removed = drop_free_skills(document, team_ids, firm_ids)
    scrubbed = scrub_texts(dropped, set(texts) | removed)
    return body if scrubbed == document else json.dumps(scrubbed)
