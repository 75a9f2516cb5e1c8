"""The texts of the mails intake sends people: plain text, Dutch or English (the account's or invitation's
language). A mail names the organisation, never another person."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("nl", "en")
LOCAL = ZoneInfo("Europe/Amsterdam")

SUBJECTS = {
    "sign_in_link": {"nl": "Uw aanmeldlink voor Werkplaats", "en": "Your sign-in link for Werkplaats"},
    "invitation": {"nl": "Uitnodiging van {organisation} voor Werkplaats",
                   "en": "Invitation from {organisation} to Werkplaats"},
}

BODIES = {
    "sign_in_link": {
        "nl": """Goedendag,

Met deze link meldt u zich aan bij Werkplaats:

{link}

De link werkt één keer en is geldig tot {until}. Heeft u deze link niet aangevraagd? Dan kunt u deze e-mail
negeren: zonder de link meldt niemand zich aan.

Met vriendelijke groet,
Werkplaats
""",
        "en": """Hello,

Use this link to sign in to Werkplaats:

{link}

The link works once and is valid until {until}. Did you not ask for it? Then you can ignore this e-mail:
without the link nobody signs in.

Kind regards,
Werkplaats
""",
    },
    "invitation": {
        "nl": """Goedendag,

{organisation} nodigt u uit voor een account bij Werkplaats, het platform dat opdrachten van ondernemers
koppelt aan studententeams.

Kies via deze link uw wachtwoord en maak uw account aan:

{link}

De uitnodiging is geldig tot {until}.

Met vriendelijke groet,
Werkplaats
""",
        "en": """Hello,

{organisation} invites you to an account at Werkplaats, the platform that matches entrepreneurs' assignments
with student teams.

Choose your password and create your account through this link:

{link}

The invitation is valid until {until}.

Kind regards,
Werkplaats
""",
    },
}


def _moment(moment: datetime, language: str) -> str:
    local = moment.astimezone(LOCAL)
    return local.strftime("%d-%m-%Y %H:%M" if language == "nl" else "%Y-%m-%d %H:%M") + " (Europe/Amsterdam)"


def render(kind: str, language: str, *, link: str, until: datetime, organisation: str = "") -> tuple[str, str]:
    lang = language if language in LANGUAGES else "nl"
    context = {"link": link, "until": _moment(until, lang), "organisation": organisation}
    return SUBJECTS[kind][lang].format(**context), BODIES[kind][lang].format(**context)
