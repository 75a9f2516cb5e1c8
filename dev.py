#!/usr/bin/env python3
"""Werkplaats developer entry point; needs only Python 3.11+.

    python3 dev.py run [--exit-after-demo] [--keep-data]  start everything locally and load the demo
    python3 dev.py test [pytest args]                     run the whole test suite: ruff, mypy, dependency
                                                          audit, pytest
    python3 dev.py audit [constraints file]               only the dependency audit (default: constraints.txt)

All first create (or update) the virtual environment in .venv from constraints.txt.

The dependency audit checks every pin of constraints.txt against PyPI's vulnerability records and fails
on any known vulnerability not listed in AUDIT_ALLOW (with the reason it does not apply). It first runs
pip-audit with PyPI's per-version feed (/pypi/NAME/VERSION/json). A package index that serves only the
project document (/pypi/NAME/json) makes pip-audit skip every package; those pins are then checked
against the project document, which lists the vulnerabilities of the latest release only: a pin at the
latest release is audited fully, an older pin only for what still affects the latest release (such pins
are named in the output). When PyPI cannot be reached, after three tries per package, the audit fails
under CI=true and otherwise warns and lets the tests run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PACKAGES = ["shared", "services/intake", "services/matching", "services/scheduling", "services/portal"]
INPUTS = ["constraints.txt", "requirements-dev.txt", *[f"{p}/pyproject.toml" for p in PACKAGES]]
PYPI_PROJECT_URL = "https://pypi.org/pypi/{name}/json"
# Vulnerability id (or alias) -> why it does not affect Werkplaats. Every entry is reviewed by hand.
AUDIT_ALLOW: dict[str, str] = {}


def venv_python() -> str:
    return os.path.join(VENV, "Scripts" if os.name == "nt" else "bin", "python")


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may be run by any python3
        sys.exit("Werkplaats needs Python 3.11 or newer")
    digest = hashlib.sha256()
    for name in INPUTS:
        with open(os.path.join(ROOT, name), "rb") as fh:
            digest.update(fh.read())
    stamp = os.path.join(VENV, ".werkplaats-installed")
    if os.path.exists(stamp) and open(stamp).read() == digest.hexdigest():
        return
    if not os.path.exists(venv_python()):
        print("creating virtual environment in .venv", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing dependencies (pinned in constraints.txt)", flush=True)
    cmd = [venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q",
           "-c", os.path.join(ROOT, "constraints.txt"), "-r", os.path.join(ROOT, "requirements-dev.txt")]
    for package in PACKAGES:
        cmd += ["-e", os.path.join(ROOT, package) + ("[local]" if package == "shared" else "")]
    subprocess.run(cmd, check=True)
    with open(stamp, "w") as fh:
        fh.write(digest.hexdigest())


class Unreachable(Exception):
    """PyPI did not answer (network error, time-out or server error) after every try."""


@dataclass
class AuditResult:
    vulnerable: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    behind_latest: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    audited: int = 0


def read_pins(path: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    with open(path) as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, version = line.partition("==")
            if not sep or not version.strip():
                raise ValueError(f"{path}: not an exact pin: {line!r}")
            pins[canonical(name)] = version.strip()
    return pins


def canonical(name: str) -> str:
    return "-".join(name.lower().replace("_", "-").replace(".", "-").split("-"))


def fetch_project(name: str, tries: int = 3, timeout: float = 20.0) -> dict[str, Any]:
    url = PYPI_PROJECT_URL.format(name=name)
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {}
            if attempt == tries - 1:
                raise Unreachable(f"{name}: PyPI answered {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            if attempt == tries - 1:
                raise Unreachable(f"{name}: {exc}") from exc
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def _ids(vuln: dict[str, Any]) -> list[str]:
    return [str(vuln["id"]), *[str(a) for a in vuln.get("aliases") or []]]


def _record(result: AuditResult, allow: dict[str, str], ids: list[str], line: str) -> None:
    reasons = [allow[i] for i in ids if i in allow]
    if reasons:
        result.allowed.append(f"{line}: {reasons[0]}")
    else:
        result.vulnerable.append(line)


def judge(pins: dict[str, str], pip_audit_report: dict[str, Any] | None,
          project: Callable[[str], dict[str, Any]], allow: dict[str, str]) -> AuditResult:
    """Combine pip-audit's per-version findings with the project documents of the pins it skipped."""
    result = AuditResult()
    unchecked = set(pins)
    for dep in (pip_audit_report or {}).get("dependencies", []):
        name = canonical(dep["name"])
        if "skip_reason" in dep or name not in unchecked:
            continue
        unchecked.discard(name)
        result.audited += 1
        seen: set[str] = set()
        for vuln in dep.get("vulns", []):
            ids = _ids(vuln)
            if seen.intersection(ids):
                continue
            seen.update(ids)
            fixed = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            _record(result, allow, ids, f"{name}=={pins[name]}: {' / '.join(ids)} (fixed in: {fixed})")

    def look_up(name: str) -> tuple[str, dict[str, Any] | Unreachable]:
        try:
            return name, project(name)
        except Unreachable as exc:
            return name, exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(look_up, sorted(unchecked)))
    for name, answer in answers:
        if isinstance(answer, Unreachable):
            result.unreachable.append(str(answer))
            continue
        if not answer:
            result.unreachable.append(f"{name}: not on PyPI")
            continue
        result.audited += 1
        latest = str(answer.get("info", {}).get("version", ""))
        if latest != pins[name]:
            result.behind_latest.append(f"{name}=={pins[name]} (latest {latest})")
        seen = set()
        for vuln in answer.get("vulnerabilities") or []:
            ids = _ids(vuln)
            if vuln.get("withdrawn") or seen.intersection(ids):
                continue
            seen.update(ids)
            fixed = ", ".join(vuln.get("fixed_in") or []) or "none yet"
            _record(result, allow, ids,
                    f"{name}=={pins[name]}: {' / '.join(ids)} (affects release {latest}; fixed in: {fixed})")
    return result


def per_version_feed_served(pins: dict[str, str]) -> bool:
    """pip-audit's source: a mirror that serves only project documents answers 404 here."""
    name, version = next(iter(sorted(pins.items())))
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/{version}/json", timeout=20):
            return True
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def run_pip_audit(constraints: str) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "pip-audit.json")
        proc = subprocess.run(
            [venv_python(), "-m", "pip_audit", "-r", constraints, "--no-deps", "--disable-pip",
             "--vulnerability-service", "pypi", "--format", "json", "--output", report,
             "--progress-spinner", "off", "--timeout", "30"],
            capture_output=True, text=True, check=False)
        if not os.path.exists(report):
            print(f"pip-audit could not run the audit (exit {proc.returncode}): "
                  f"{proc.stderr.strip().splitlines()[-1:] or ''}", flush=True)
            return None
        with open(report) as fh:
            return dict(json.load(fh))


def audit_dependencies(constraints: str, in_ci: bool) -> int:
    print(f"$ dependency audit of {os.path.relpath(constraints, ROOT)}", flush=True)
    pins = read_pins(constraints)
    if per_version_feed_served(pins):
        report = run_pip_audit(constraints)
    else:
        print("  PyPI's per-version feed is not served here: pins are checked against the project documents",
              flush=True)
        report = None
    result = judge(pins, report, fetch_project, AUDIT_ALLOW)
    for line in result.allowed:
        print(f"  allowed: {line}", flush=True)
    if result.behind_latest:
        print(f"  {len(result.behind_latest)} pins are behind their latest release; through an index without "
              f"the per-version feed they are checked only for what affects the latest: "
              f"{', '.join(result.behind_latest)}", flush=True)
    for line in result.vulnerable:
        print(f"  VULNERABLE {line}", flush=True)
    for line in result.unreachable:
        print(f"  not audited: {line}", flush=True)
    print(f"  {result.audited} of {len(pins)} pins audited, {len(result.vulnerable)} known vulnerabilities",
          flush=True)
    if result.vulnerable:
        return 1
    if result.unreachable:
        if in_ci:
            print("  CI=true: an audit that could not reach PyPI fails", flush=True)
            return 1
        print("  WARNING: the audit was incomplete (PyPI not reachable); CI fails in this case", flush=True)
    return 0


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "audit"):
        sys.exit(__doc__)
    ensure_environment()
    command, rest = sys.argv[1], sys.argv[2:]
    os.chdir(ROOT)
    in_ci = os.environ.get("CI", "").lower() == "true"
    if command == "audit":
        sys.exit(audit_dependencies(os.path.abspath(rest[0] if rest else "constraints.txt"), in_ci))
    if command == "run":
        args = [venv_python(), "-m", "werkplaats_shared.devstack", *rest]
    else:
        for check in (["ruff", "check", "."], ["mypy", "."]):
            print("$", " ".join(check), flush=True)
            if subprocess.call([venv_python(), "-m", *check]) != 0:
                sys.exit(f"{check[0]} found problems")
        if audit_dependencies(os.path.join(ROOT, "constraints.txt"), in_ci) != 0:
            sys.exit("the dependency audit found problems")
        # the tests run in parallel, one worker per core (at most 4), each module on one worker (its
        # module-scoped fixtures, such as a browser journey's stack, start once); `-n 0` runs them in one
        parallel = [] if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in rest) else [
            "-n", str(min(4, os.cpu_count() or 1)), "--dist", "loadscope"]
        args = [venv_python(), "-m", "pytest", *parallel, *rest]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(args[0], args)  # noqa: S606 - replace this process with the venv's Python


if __name__ == "__main__":
    main()
