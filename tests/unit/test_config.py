"""Settings come from environment variables only, with local defaults."""

from __future__ import annotations

import pytest
from werkplaats_shared.config import Settings


def test_local_defaults_need_no_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Settings.from_env("matching", {"WERKPLAATS_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path}/matching.sqlite3"
    assert s.broker_url == f"redis+socket://{tmp_path}/broker.sock"
    assert (s.http_port, s.solver, s.process) == (8102, "highs", "all")


@pytest.mark.parametrize("name, value", [("WERKPLAATS_PROCESS", "both"), ("WERKPLAATS_SOLVER", "gurobi"),
                                         ("WERKPLAATS_HTTP_PORT", "eighty")])
def test_invalid_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Settings.from_env("intake", {name: value})
