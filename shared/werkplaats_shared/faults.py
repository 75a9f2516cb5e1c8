"""Test-only fault injection, driven by WERKPLAATS_FAULT; inert when the variable is unset.

Format: ``kill-after-commit:<consumer>:<marker-file>``. The first time the named consumer has
committed a message's effect, the process kills itself with SIGKILL before acknowledging, and
creates the marker file so that the restarted process does not do it again.
"""

from __future__ import annotations

import os
import signal


def maybe_kill_after_commit(consumer: str) -> None:
    spec = os.environ.get("WERKPLAATS_FAULT", "")
    if not spec.startswith("kill-after-commit:"):
        return
    _, target, marker = spec.split(":", 2)
    if target != consumer or os.path.exists(marker):
        return
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
