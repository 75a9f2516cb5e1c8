"""Administration from the command line: organisations and their API keys, and the national list of
referral schemes (the operator's: no coordinator can change it).

Organisations are created and deactivated by the same service layer as the operator's API
(service_layer/organisations.py): the same rules, audited as the operator (``cli``). A new key is printed
once, as JSON on stdout; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from marshmallow import ValidationError
from werkplaats_shared.contracts import LEVELS, ROLES

from ..bootstrap import bootstrap
from ..domain.model import DomainError
from ..service_layer import organisations, services
from .schemas import SCHEME_CODE, SchemeIn


def admin(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m intake admin")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-organisation", help="create an organisation and its first API key")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--level", action="append", choices=LEVELS, default=[],
                        help="a level the institution offers (repeat for several)")
    sub.add_parser("create-organisations", help="create several organisations from a JSON list on stdin: "
                   '[{"name": ..., "role": ..., "levels": [...]}]; all or none; prints a JSON list with their '
                   "keys")
    deactivate = sub.add_parser("deactivate-organisation", help="deactivate an organisation: revoke its keys, "
                                "disable its accounts, keep its data (audited)")
    deactivate.add_argument("organisation_id")
    deactivate.add_argument("--reason", required=True, help="why (kept in the audit log)")
    issue = sub.add_parser("issue-key", help="issue another API key to an organisation")
    issue.add_argument("organisation_id")
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    national = sub.add_parser("put-national-scheme", help="create or change a scheme of the national list, "
                              "which every workspace's referrals offer (audited)")
    national.add_argument("code", help="lowercase letters, digits and '-', at most 40")
    national.add_argument("--name-nl", required=True)
    national.add_argument("--name-en", required=True)
    national.add_argument("--url", required=True, help="an https link")
    national.add_argument("--theme", action="append", default=[], dest="themes",
                          help="a theme it helps with (repeat for several; none: every theme)")
    national.add_argument("--inactive", action="store_true", help="keep it, but offer it no more")
    sub.add_parser("list-national-schemes", help="print the national list as JSON")
    args = parser.parse_args(argv)
    scheme: dict[str, Any] = {}
    if args.command == "put-national-scheme":
        scheme = _scheme_input(parser, args)
    requests = _read_organisations(parser) if args.command == "create-organisations" else []

    infra = bootstrap()
    try:
        _run(args, infra, scheme, requests)
    except DomainError as exc:
        parser.error(f"{exc.field}: {exc.reason}")
    except organisations.BulkRejected as exc:
        parser.error("; ".join(f"organisation {p.row}: {p.column}: {p.reason}" for p in exc.problems))
    except services.NotFound as exc:
        parser.error(f"not found: {exc}")


def _run(args: argparse.Namespace, infra: Any, scheme: dict[str, Any], requests: list[dict[str, Any]]) -> None:
    with infra.session_factory.begin() as session:
        def emit(env: object) -> None:
            infra.emit(session, env)  # type: ignore[arg-type]

        if args.command == "create-organisation":
            made = organisations.create(session, emit, services.OPERATOR, name=args.name, role=args.role,
                                        levels=args.level, via="cli")
            out = {"organisation_id": made.organisation.id, "role": made.organisation.role, "api_key": made.api_key}
        elif args.command == "create-organisations":
            created = [{"organisation_id": m.organisation.id, "name": m.organisation.name,
                        "role": m.organisation.role, "api_key": m.api_key}
                       for m in organisations.create_many(session, emit, services.OPERATOR, list(enumerate(requests)),
                                                          via="cli")]
            print(json.dumps(created))
            return
        elif args.command == "deactivate-organisation":
            org = organisations.deactivate(session, emit, services.OPERATOR, args.organisation_id, args.reason)
            out = {"organisation_id": org.id, "deactivated_at": org.deactivated_at.isoformat()
                   if org.deactivated_at else ""}
        elif args.command == "put-national-scheme":
            saved = services.put_national_scheme(session, args.code, scheme)
            out = _scheme_json(saved)
        elif args.command == "list-national-schemes":
            print(json.dumps([_scheme_json(s) for s in services.national_schemes(session)]))
            return
        elif args.command == "issue-key":
            out = {"organisation_id": args.organisation_id,
                   "api_key": services.issue_key(session, emit, args.organisation_id)}
        else:
            services.revoke_key(session, emit, args.key_id)
            out = {"revoked": args.key_id}
    print(json.dumps(out))


def _read_organisations(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    try:
        items = json.load(sys.stdin)
    except ValueError:
        parser.error("stdin must hold a JSON list of organisations")
    if not isinstance(items, list):
        parser.error("stdin must hold a JSON list of organisations")
    for i, item in enumerate(items):  # the rules of an organisation: the service layer's
        if not isinstance(item, dict):
            parser.error(f"organisation {i}: must be an object with name, role and levels")
    return items


def _scheme_input(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The same rules as a workspace's scheme in the API (SchemeIn)."""
    if not re.fullmatch(SCHEME_CODE, args.code):
        parser.error("code: lowercase letters, digits and '-', at most 40")
    try:
        return dict(SchemeIn().load({"name_nl": args.name_nl, "name_en": args.name_en, "url": args.url,
                                     "themes": args.themes, "active": not args.inactive}))
    except ValidationError as exc:
        parser.error("; ".join(f"{field}: {reason}" for field, reason in sorted(exc.normalized_messages().items())))


def _scheme_json(scheme: Any) -> dict[str, Any]:
    return {"code": scheme.code, "name_nl": scheme.name_nl, "name_en": scheme.name_en, "url": scheme.url,
            "themes": scheme.themes, "active": scheme.active, "national": scheme.national}
