"""The README is a promise: its set-up commands, catalogue and configuration table must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from werkplaats_shared.docs import env_vars_markdown, message_catalogue_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _between(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert match, f"README lacks the {name} section"
    return match.group(1).strip()


def test_message_catalogue_matches_the_contracts() -> None:
    assert _between("catalogue") == message_catalogue_markdown()


def test_configuration_table_matches_what_the_services_read() -> None:
    assert _between("env") == env_vars_markdown()


def test_exactly_two_setup_commands_and_ci_calls_the_test_command() -> None:
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", setup, re.S)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["python3 dev.py run", "python3 dev.py test"]
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
