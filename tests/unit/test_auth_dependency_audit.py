"""The dependency audit of `dev.py test`: known vulnerabilities fail it; an unreachable PyPI fails it in CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dev

PINS = {"jinja2": "3.1.4", "pycrypto": "2.6.1", "flask": "3.1.3"}


def _vuln(vid: str, *aliases: str, fixed: tuple[str, ...] = (), withdrawn: str | None = None) -> dict[str, Any]:
    return {"id": vid, "aliases": list(aliases), "fixed_in": list(fixed), "withdrawn": withdrawn}


PROJECTS: dict[str, dict[str, Any]] = {
    "jinja2": {"info": {"version": "3.1.6"}, "vulnerabilities": []},
    "pycrypto": {"info": {"version": "2.6.1"}, "vulnerabilities": [
        _vuln("PYSEC-2017-94", "CVE-2013-7459"), _vuln("GHSA-cq27-v7xp-c356", "CVE-2013-7459", "PYSEC-2017-94"),
        _vuln("PYSEC-2000-1", withdrawn="2020-01-01T00:00:00Z")]},
    "flask": {"info": {"version": "3.1.3"}, "vulnerabilities": []},
}


def test_per_version_findings_fail_and_aliases_are_reported_once() -> None:
    report = {"dependencies": [
        {"name": "Jinja2", "version": "3.1.4", "vulns": [
            {"id": "GHSA-q2x7-8rv6-6q7h", "aliases": ["CVE-2024-56201"], "fix_versions": ["3.1.5"]},
            {"id": "PYSEC-2024-1", "aliases": ["GHSA-q2x7-8rv6-6q7h"], "fix_versions": ["3.1.5"]}]},
        {"name": "pycrypto", "version": "2.6.1", "vulns": []},
        {"name": "flask", "version": "3.1.3", "vulns": []}]}

    result = dev.judge(PINS, report, lambda name: pytest.fail(f"{name} was looked up twice"), {})

    assert result.vulnerable == ["jinja2==3.1.4: GHSA-q2x7-8rv6-6q7h / CVE-2024-56201 (fixed in: 3.1.5)"]
    assert result.audited == 3 and not result.unreachable


def test_pins_the_per_version_feed_skipped_are_checked_against_the_project_document() -> None:
    report = {"dependencies": [{"name": name, "skip_reason": "Dependency not found on PyPI"} for name in PINS]}

    result = dev.judge(PINS, report, PROJECTS.__getitem__, {})

    assert result.vulnerable == [
        "pycrypto==2.6.1: PYSEC-2017-94 / CVE-2013-7459 (affects release 2.6.1; fixed in: none yet)"]
    assert result.behind_latest == ["jinja2==3.1.4 (latest 3.1.6)"]
    assert result.audited == 3


def test_an_allowed_vulnerability_is_shown_with_its_reason_and_does_not_fail() -> None:
    result = dev.judge({"pycrypto": "2.6.1"}, None, PROJECTS.__getitem__, {"CVE-2013-7459": "not imported"})
    assert result.vulnerable == []
    assert result.allowed == ["pycrypto==2.6.1: PYSEC-2017-94 / CVE-2013-7459 (affects release 2.6.1; "
                              "fixed in: none yet): not imported"]


def test_an_unreachable_pypi_fails_the_audit_in_ci_and_only_warns_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\nflask==3.1.3\n")

    def down(name: str) -> dict[str, Any]:
        raise dev.Unreachable(f"{name}: connection refused")

    monkeypatch.setattr(dev, "per_version_feed_served", lambda pins: False)
    monkeypatch.setattr(dev, "fetch_project", down)

    assert dev.audit_dependencies(str(constraints), in_ci=True) == 1
    assert "not audited: flask: connection refused" in capsys.readouterr().out
    assert dev.audit_dependencies(str(constraints), in_ci=False) == 0
    assert "WARNING: the audit was incomplete" in capsys.readouterr().out


def test_a_vulnerable_pin_fails_the_audit_even_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("pycrypto==2.6.1\n")
    monkeypatch.setattr(dev, "per_version_feed_served", lambda pins: False)
    monkeypatch.setattr(dev, "fetch_project", PROJECTS.__getitem__)
    assert dev.audit_dependencies(str(constraints), in_ci=False) == 1


def test_constraints_must_be_exact_pins(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("flask>=3\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        dev.read_pins(str(constraints))
    constraints.write_text("Flask_Limiter==4.1.1  # comment\n")
    assert dev.read_pins(str(constraints)) == {"flask-limiter": "4.1.1"}
