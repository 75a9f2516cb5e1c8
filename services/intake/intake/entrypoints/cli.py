"""Administration from the command line: organisations and their API keys.

A new key is printed once, as JSON on stdout; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from werkplaats_shared.contracts import LEVELS, ROLES

from ..bootstrap import bootstrap
from ..service_layer import services


def admin(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m intake admin")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-organisation", help="create an organisation and its first API key")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--level", action="append", choices=LEVELS, default=[],
                        help="a level the institution offers (repeat for several)")
    sub.add_parser("create-organisations", help="create several organisations from a JSON list on stdin: "
                   '[{"name": ..., "role": ..., "levels": [...]}]; prints a JSON list with their keys')
    issue = sub.add_parser("issue-key", help="issue another API key to an organisation")
    issue.add_argument("organisation_id")
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    requests = _read_organisations(parser) if args.command == "create-organisations" else []

    infra = bootstrap()
    with infra.session_factory.begin() as session:
        def emit(env: object) -> None:
            infra.emit(session, env)  # type: ignore[arg-type]

        if args.command == "create-organisation":
            if args.role == "institution" and not args.level:
                parser.error("an institution needs at least one --level")
            org, key = services.create_organisation(session, emit, name=args.name, role=args.role,
                                                    levels=args.level)
            out = {"organisation_id": org.id, "role": org.role, "api_key": key}
        elif args.command == "create-organisations":
            created = []
            for item in requests:
                org, key = services.create_organisation(session, emit, name=item["name"], role=item["role"],
                                                        levels=item.get("levels", []))
                created.append({"organisation_id": org.id, "name": org.name, "role": org.role, "api_key": key})
            print(json.dumps(created))
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
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            parser.error(f"organisation {i}: name is required")
        if item.get("role") not in ROLES:
            parser.error(f"organisation {i}: role must be one of {', '.join(ROLES)}")
        levels = item.get("levels", [])
        if not isinstance(levels, list) or any(level not in LEVELS for level in levels):
            parser.error(f"organisation {i}: levels must be a list of {', '.join(LEVELS)}")
        if item["role"] == "institution" and not levels:
            parser.error(f"organisation {i}: an institution needs at least one level")
    return items
