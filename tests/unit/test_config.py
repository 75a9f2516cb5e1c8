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


def test_notice_sending_settings_default_to_four_connections_of_a_hundred_mails_and_are_bounded() -> None:
    s = Settings.from_env("scheduling", {})
    assert (s.mail_concurrency, s.mail_per_connection) == (4, 100)
    one_by_one = Settings.from_env("scheduling", {"WERKPLAATS_MAIL_CONCURRENCY": "1",
                                                   "WERKPLAATS_MAIL_PER_CONNECTION": "1"})
    assert (one_by_one.mail_concurrency, one_by_one.mail_per_connection) == (1, 1)
    for name, value in [("WERKPLAATS_MAIL_CONCURRENCY", "0"), ("WERKPLAATS_MAIL_CONCURRENCY", "33"),
                        ("WERKPLAATS_MAIL_PER_CONNECTION", "0"), ("WERKPLAATS_MAIL_PER_CONNECTION", "many")]:
        with pytest.raises(ValueError, match=name):
            Settings.from_env("scheduling", {name: value})
