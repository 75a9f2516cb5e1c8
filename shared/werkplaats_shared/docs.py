"""Generated parts of the README: the message catalogue and the configuration table.

``python -m werkplaats_shared.docs`` prints both; a test checks the README holds them verbatim.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from .config import ENV_VARS
from .contracts import CONTRACTS


def _describe(schema: Schema, prefix: str = "") -> list[str]:
    out = []
    for name, field in schema.fields.items():
        inner: Any = getattr(field, "inner", None)
        nested = getattr(inner, "schema", None) if isinstance(field, fields.List) else None
        if nested is not None:
            out.append(f"{prefix}{name}[]: {{{', '.join(_describe(nested))}}}")
        elif isinstance(field, fields.Nested):
            out.append(f"{prefix}{name}: {{{', '.join(_describe(field.schema))}}}")
        else:
            out.append(f"{prefix}{name}")
    return out


def message_catalogue_markdown() -> str:
    lines = ["| type | version | producer | consumers | payload fields | meaning |",
             "|---|---|---|---|---|---|"]
    for c in CONTRACTS:
        lines.append(f"| `{c.type}` | {c.version} | {c.producer} | {', '.join(c.consumers)} | "
                     f"{', '.join(_describe(c.schema()))} | {c.description} |")
    return "\n".join(lines)


def env_vars_markdown() -> str:
    lines = ["| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in ENV_VARS.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(message_catalogue_markdown())
    print()
    print(env_vars_markdown())
