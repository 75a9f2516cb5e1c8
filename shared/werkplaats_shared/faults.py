"""Test-only fault injection, driven by WERKPLAATS_FAULT; inert when the variable is unset.

Format: ``kill-after-commit:<consumer>:<message-type>:<marker-file>``. The first time the
named consumer has committed the effect of a message of that type, the process kills itself
with SIGKILL before acknowledging, and creates the marker file so that the restarted process does not do it again.
"""

from __future__ import annotations

import os
import signal


def maybe_kill_after_commit(consumer: str, message_type: str) -> None:
    spec = os.environ.get("WERKPLAATS_FAULT", "")
    if not spec.startswith("kill-after-commit:"):
        return
    _, target, target_type, marker = spec.split(":", 3)
    if target != consumer or target_type != message_type or os.path.exists(marker):
        return
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
