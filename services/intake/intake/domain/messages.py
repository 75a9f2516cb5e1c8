"""Every reason and message intake's API answers with, in English (as the code and the libraries write
them) and in Dutch, what users get unless they ask for English. A pattern matches a whole English text;
its named groups carry the values over into the Dutch text."""

from __future__ import annotations

import re

_ROLE = {"coordinator": "coördinator", "institution": "instelling", "entrepreneur": "ondernemer"}

CATALOGUE: list[tuple[str, str]] = [
    # request validation (marshmallow, webargs)
    (r"Unknown field\.", "Onbekend veld."),
    (r"Missing data for required field\.", "Verplicht veld; het ontbreekt."),
    (r"Field may not be null\.", "Mag niet leeg (null) zijn."),
    (r"must not be blank", "Mag niet leeg zijn."),
    (r"Not a valid integer\.", "Geen geldig geheel getal."),
    (r"Not a valid number\.", "Geen geldig getal."),
    (r"Not a valid string\.", "Geen geldige tekst."),
    (r"Not a valid list\.", "Geen geldige lijst."),
    (r"Not a valid boolean\.", "Geen geldige ja/nee-waarde."),
    (r"Not a valid date\.", "Geen geldige datum (JJJJ-MM-DD)."),
    (r"Not a valid datetime\.", "Geen geldig tijdstip."),
    (r"Not a valid URL\.", "Geen geldige URL."),
    (r"Not a valid mapping type\.", "Geen geldig object."),
    (r"Invalid input type\.", "Ongeldig invoertype."),
    (r"Invalid value\.", "Ongeldige waarde."),
    (r"Invalid JSON body\.", "De body is geen geldige JSON."),
    (r"Special numeric values \(nan or infinity\) are not permitted\.",
     "Speciale getalwaarden (nan of oneindig) zijn niet toegestaan."),
    (r"String does not match expected pattern\.", "De tekst heeft niet de verwachte vorm."),
    (r"Must be one of: (?P<a>.*)\.", "Moet een van deze waarden zijn: {a}."),
    (r"Length must be between (?P<a>\d+) and (?P<b>\d+)\.", "De lengte moet tussen {a} en {b} liggen."),
    (r"Length must be (?P<a>\d+)\.", "De lengte moet {a} zijn."),
    (r"Shorter than minimum length (?P<a>\d+)\.", "Korter dan de minimale lengte {a}."),
    (r"Longer than maximum length (?P<a>\d+)\.", "Langer dan de maximale lengte {a}."),
    (r"Must be greater than or equal to (?P<a>\S+) and less than or equal to (?P<b>\S+)\.",
     "Moet minstens {a} en hoogstens {b} zijn."),
    (r"Must be greater than or equal to (?P<a>\S+)\.", "Moet minstens {a} zijn."),
    (r"Must be less than or equal to (?P<a>\S+)\.", "Moet hoogstens {a} zijn."),
    # intake's own field rules
    (r"a CBS municipality code is GM and four digits, e\.g\. GM0363",
     "Een CBS-gemeentecode is GM met vier cijfers, bijvoorbeeld GM0363."),
    (r"not a current CBS municipality code", "Geen bestaande CBS-gemeentecode."),
    (r"no such workspace", "Deze werkplaats bestaat niet."),
    (r"not one of your workspaces", "Dit is niet een van uw werkplaatsen."),
    (r"period (?P<a>.+) is not in the workspace's calendar",
     "Periode {a} staat niet in de kalender van de werkplaats."),
    (r"period (?P<a>.+) is not in the workspace's calendar; the firm's area is served by workspace (?P<b>.+), "
     r"whose calendar has other periods",
     "Periode {a} staat niet in de kalender van de werkplaats; uw bedrijf valt onder werkplaats {b}, "
     "die andere periodes heeft."),
    (r"period codes must be unique", "Periodecodes moeten uniek zijn."),
    (r"a period must not end before it starts", "Een periode mag niet eindigen voordat ze begint."),
    (r"the institution does not offer level (?P<a>\S+)", "De instelling biedt niveau {a} niet aan."),
    (r"min_teams must not exceed max_teams", "min_teams mag niet groter zijn dan max_teams."),
    (r"team_size_min must not exceed team_size_max", "team_size_min mag niet groter zijn dan team_size_max."),
    (r"a preferred level must be an accepted level", "Een voorkeursniveau moet ook een geaccepteerd niveau zijn."),
    (r"no such institution", "Deze instelling bestaat niet."),
    (r"not one of the institution's campuses \(PATCH /institution\)",
     "Geen van de locaties van de instelling (PATCH /institution)."),
    (r"not one of the institution's programmes \(PATCH /institution\)",
     "Geen van de opleidingen van de instelling (PATCH /institution)."),
    (r"campus names must be unique", "Namen van locaties moeten uniek zijn."),
    (r"each block is mapped once per workspace", "Elk blok hoort per werkplaats bij één periode."),
    (r"no such assignment in this workspace and period", "Deze opdracht bestaat niet in deze werkplaats en periode."),
    (r"no such assignment in this workspace", "Deze opdracht bestaat niet in deze werkplaats."),
    (r"no such assignment in these workspaces", "Deze opdracht bestaat niet in deze werkplaatsen."),
    (r"no open assignments in these workspaces for this period",
     "Er zijn geen open opdrachten in deze werkplaatsen voor deze periode."),
    (r"each workspace may be named once", "Noem elke werkplaats maar één keer."),
    (r"some assignments went into another batch meanwhile; submit again",
     "Sommige opdrachten zijn intussen in een andere batch gekomen; dien de batch opnieuw in."),
    (r"give workspace_id or workspace_ids, not both", "Geef workspace_id of workspace_ids, niet allebei."),
    (r"give workspace_id or workspace_ids", "Geef workspace_id of workspace_ids."),
    (r"give assignment_ids or assignments: all_open, not both",
     "Geef assignment_ids of assignments: all_open, niet allebei."),
    (r"give assignment_ids or assignments: all_open", "Geef assignment_ids of assignments: all_open."),
    (r"no such batch snapshot", "Deze momentopname van een batch bestaat niet."),
    (r"assignment is for period (?P<a>.+), not (?P<b>.+)", "De opdracht is voor periode {a}, niet voor {b}."),
    (r"a batch holds at most (?P<a>\d+) assignments", "Een batch bevat hoogstens {a} opdrachten."),
    (r"an assignment cannot go from (?P<a>\S+) to (?P<b>\S+)", "Een opdracht kan niet van {a} naar {b} gaan."),
    (r"an assignment can only be changed before it is in a batch \(it is (?P<a>\S+)\)",
     "Een opdracht kan alleen worden gewijzigd voordat ze in een batch zit (ze is nu {a})."),
    (r"register the firm first \(POST /firm\) so we know where it is",
     "Registreer eerst uw bedrijf (POST /firm), zodat bekend is waar het gevestigd is."),
    (r"a KvK number has exactly 8 digits", "Een KvK-nummer heeft precies 8 cijfers."),
    (r"another firm is registered with this KvK number", "Er is al een ander bedrijf met dit KvK-nummer."),
    (r"the firm profile exists already; change it with PATCH /firm",
     "Het bedrijfsprofiel bestaat al; wijzig het met PATCH /firm."),
    (r"no firm profile yet: POST /firm", "Nog geen bedrijfsprofiel: POST /firm."),
    (r"no firm of this workspace with this id", "Geen bedrijf van deze werkplaats met dit id."),
    (r"the receiving workspace must be another one", "De ontvangende werkplaats moet een andere zijn."),
    (r"the receiving workspace has no period (?P<a>.+)", "De ontvangende werkplaats heeft geen periode {a}."),
    (r"no region (?P<a>.+) is known", "Regio {a} is onbekend (een provincie)."),
    (r"no level (?P<a>.+) is known", "Niveau {a} is onbekend."),
    (r"no institution (?P<a>.+) is known", "Instelling {a} is onbekend."),
    (r"each group has one floor at most", "Elke groep heeft hoogstens één ondergrens."),
    (r"only a batch whose run ended without a matching \(infeasible, failed or cancelled\) can be changed or "
     r"closed; this batch is (?P<a>\S+)",
     "Alleen een batch waarvan de ronde zonder koppeling eindigde (onoplosbaar, mislukt of geannuleerd) kan "
     "worden gewijzigd of gesloten; deze batch is {a}."),
    (r"the batch has no assignments left to match; close it",
     "De batch heeft geen opdrachten meer om te koppelen; sluit hem."),
    (r"not an ISO 8601 time", "Geen tijdstip in ISO 8601-vorm."),
    (r"invalid scheme code", "Ongeldige code voor een regeling."),
    (r"a national scheme has this code; choose another code",
     "Een landelijke regeling heeft deze code; kies een andere code."),
    (r"must not contain NUL characters", "Mag geen NUL-tekens bevatten."),
    (r"lowercase letters, digits and '-', at most 40", "Kleine letters, cijfers en '-', hoogstens 40 tekens."),
    # organisations (the operator's)
    (r"a name is required", "Een naam is verplicht."),
    (r"an institution needs at least one level", "Een instelling biedt minstens één niveau aan."),
    (r"an active organisation of this role has this name already",
     "Er is al een actieve organisatie met deze rol en deze naam."),
    (r"row (?P<a>\d+) has this organisation already", "Rij {a} bevat deze organisatie al."),
    (r"the organisation is deactivated already", "De organisatie is al gedeactiveerd."),
    (r"the organisation is deactivated", "De organisatie is gedeactiveerd."),
    (r"send the organisations as a CSV file", "Stuur de organisaties als CSV-bestand."),
    (r"send the file as the multipart/form-data field 'file'",
     "Stuur het bestand als multipart/form-data-veld 'file'."),
    (r"the file's header is not the one documented", "De kopregel van het bestand is niet de beschreven kopregel."),
    (r"unknown column", "Onbekende kolom."),
    (r"the column is missing", "Deze kolom ontbreekt."),
    (r"the column is named twice", "Deze kolom staat er twee keer in."),
    (r"(?P<a>\d+) problems in the file; nothing was stored", "{a} problemen in het bestand; er is niets opgeslagen."),
    (r"(?P<a>\d+) problems in (?P<b>\d+) assignments; nothing was stored",
     "{a} problemen in {b} opdrachten; er is niets opgeslagen."),
    (r"(?P<a>\d+) problems in (?P<b>\d+) firms; nothing was stored",
     "{a} problemen in {b} bedrijven; er is niets opgeslagen."),
    (r"row (?P<a>\d+) has this KvK number already", "Rij {a} heeft dit KvK-nummer al."),
    (r"not found", "Niet gevonden."),
    (r"unknown batch", "Onbekende batch."),
    (r"unknown assignment", "Onbekende opdracht."),
    (r'This request is required to be conditional; try using "If-Match"\.',
     "Stuur de ETag van het object in de header If-Match."),
    # keys, roles, idempotency (the shared library's texts)
    (r"missing API key: send 'Authorization: Bearer <key>'",
     "De API-sleutel ontbreekt: stuur 'Authorization: Bearer <sleutel>'."),
    (r"invalid or revoked API key", "Ongeldige of ingetrokken API-sleutel."),
    (r"this action needs the role (?P<a>\w+) or (?P<b>\w+)", "Deze actie vraagt de rol {a} of {b}."),
    (r"this action needs the role (?P<a>\w+)", "Deze actie vraagt de rol {a}."),
    (r"no role may use this route", "Geen enkele rol mag deze route gebruiken."),
    (r"Idempotency-Key must be 1-(?P<a>\d+) characters", "Idempotency-Key moet 1 tot {a} tekens lang zijn."),
    (r"1-(?P<a>\d+) characters", "1 tot {a} tekens."),
    (r"this Idempotency-Key was used for a different request",
     "Deze Idempotency-Key is al gebruikt voor een ander verzoek."),
    (r"already used for a different request", "Al gebruikt voor een ander verzoek."),
    (r"a request with this Idempotency-Key is still being processed",
     "Een verzoek met deze Idempotency-Key wordt nog verwerkt."),
    (r"request in progress; retry later", "Het verzoek wordt nog verwerkt; probeer het later opnieuw."),
    (r"(?P<a>\d+) per (?P<b>\d+ )?(?P<c>second|minute|hour|day)s?",
     "Te veel verzoeken: hoogstens {a} per {b}{c}."),
]

_UNITS = {"second": "seconde", "minute": "minuut", "hour": "uur", "day": "dag"}
_COMPILED = [(re.compile(pattern), dutch) for pattern, dutch in CATALOGUE]


def to_dutch(text: str) -> str | None:
    """The Dutch text for an English reason or message, or None when the catalogue has none."""
    for pattern, dutch in _COMPILED:
        found = pattern.fullmatch(text)
        if found:
            values = {k: _ROLE.get(v, _UNITS.get(v, v)) if v is not None else "" for k, v in found.groupdict().items()}
            return dutch.format(**values)
    return None
