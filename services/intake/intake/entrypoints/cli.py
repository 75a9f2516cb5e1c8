"""Administration from the command line: organisations and their API keys.

A new key is printed once, as JSON on stdout; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json

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
    issue = sub.add_parser("issue-key", help="issue another API key to an organisation")
    issue.add_argument("organisation_id")
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)

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
        elif args.command == "issue-key":
            out = {"organisation_id": args.organisation_id,
                   "api_key": services.issue_key(session, emit, args.organisation_id)}
        else:
            services.revoke_key(session, emit, args.key_id)
            out = {"revoked": args.key_id}
    print(json.dumps(out))
