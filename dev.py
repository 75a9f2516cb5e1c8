#!/usr/bin/env python3
"""Werkplaats developer entry point; needs only Python 3.11+.

    python3 dev.py run [--exit-after-demo]   start everything locally and run a demo batch
    python3 dev.py test [pytest args]        run the whole test suite: ruff, mypy, pytest

Both first create (or update) the virtual environment in .venv from constraints.txt.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PACKAGES = ["shared", "services/intake", "services/matching", "services/scheduling"]
INPUTS = ["constraints.txt", "requirements-dev.txt", *[f"{p}/pyproject.toml" for p in PACKAGES]]


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


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        sys.exit(__doc__)
    ensure_environment()
    command, rest = sys.argv[1], sys.argv[2:]
    os.chdir(ROOT)
    if command == "run":
        args = [venv_python(), "-m", "werkplaats_shared.devstack", *rest]
    else:
        for check in (["ruff", "check", "."], ["mypy", "."]):
            print("$", " ".join(check), flush=True)
            if subprocess.call([venv_python(), "-m", *check]) != 0:
                sys.exit(f"{check[0]} found problems")
        args = [venv_python(), "-m", "pytest", *rest]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(args[0], args)  # noqa: S606 - replace this process with the venv's Python


if __name__ == "__main__":
    main()
