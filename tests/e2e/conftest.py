"""Fixtures that start the whole system as separate processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkplaats_shared.devstack.stack import SERVICES, LocalStack, StackConfig

from ..conftest import free_port

FAST = {"WERKPLAATS_POLL_INTERVAL": "0.2", "WERKPLAATS_VISIBILITY_TIMEOUT": "5",
        "WERKPLAATS_SOLVER_TIME_LIMIT": "30"}


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    stacks: list[LocalStack] = []

    def make(**overrides: object) -> LocalStack:
        config = StackConfig(data_dir=str(tmp_path / f"s{len(stacks)}"),
                             ports={s: free_port() for s in SERVICES}, smtp_port=free_port(),
                             extra_env=dict(FAST))
        for key, value in overrides.items():
            setattr(config, key, value)
        stack = LocalStack(config)
        stacks.append(stack)
        stack.start()
        return stack

    yield make
    for stack in stacks:
        stack.stop()
