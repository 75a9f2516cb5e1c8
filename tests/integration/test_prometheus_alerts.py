"""Issue 18's test of the alerts, with a real Prometheus: an intake worker process whose broker stops (the embedded
broker, ended) cannot publish its outbox; Prometheus, scraping the process's /metrics and evaluating
deploy/prometheus/alerts.yml, sees ``werkplaats_outbox_oldest_age_seconds`` grow and the WerkplaatsOutboxStuck rule's
expression become true, and the alert fire; once the broker is back the relay publishes and the alert ends.

Prometheus is Debian's ``prometheus`` package (.ci/run installs it); without it this test skips, except under
CI=true, where it fails."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from intake import bootstrap as intake_bootstrap
from intake.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.devstack.embedded_broker import EmbeddedBroker

from ..conftest import IN_CI, free_port
from ..unit.test_monitoring_files import dashboard_expressions
from .harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT = "WerkplaatsOutboxStuck"


@pytest.fixture
def prometheus_binary() -> str:
    """Checked before anything is started: without the binary the test skips (fails under CI=true)."""
    path = shutil.which("prometheus")
    if path is None:
        reason = "prometheus not installed (apt-get install prometheus; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = get_json(f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str) -> list[dict[str, Any]]:
        body = get_json(f"{self.base}/api/v1/alerts")
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture
def intake_worker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Settings, int]]:
    """An intake worker process (relay and consumer) on the embedded broker, serving /metrics on a free port."""
    broker = EmbeddedBroker(str(tmp_path / "broker"))
    broker.start()
    metrics_port = free_port()
    env = {"WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
           "WERKPLAATS_BROKER_URL": broker.url, "WERKPLAATS_PROCESS": "worker",
           "WERKPLAATS_HTTP_PORT": str(free_port()), "WERKPLAATS_METRICS_PORT": str(metrics_port),
           "WERKPLAATS_POLL_INTERVAL": "0.2"}
    log = open(tmp_path / "intake.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "intake"], env={**os.environ, **env}, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: process.poll() is not None or answers(f"http://127.0.0.1:{metrics_port}/metrics"),
                   timeout=60, what="the intake worker's /metrics")
        assert process.poll() is None, (tmp_path / "intake.log").read_text(encoding="utf-8")
        yield broker, Settings.from_env("intake", env), metrics_port
    finally:
        stop(process)
        log.close()
        broker.stop()


@pytest.fixture
def prometheus(prometheus_binary: str, intake_worker: tuple[EmbeddedBroker, Settings, int],
               tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of its own: scraping the worker every second and evaluating the real alert rules as often."""
    _, _, metrics_port = intake_worker
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(ALERTS)],
              "scrape_configs": [{"job_name": "intake-worker",
                                  "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    process = subprocess.Popen([prometheus_binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or answers(f"{base}/-/ready"), timeout=60,
                   what="Prometheus ready")
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text(encoding="utf-8")
        yield Prometheus(base)
    finally:
        stop(process)
        log.close()


def add_organisation(settings: Settings, name: str) -> None:
    """What an administrator does: an organisation and its key, whose apikey.issued waits in the outbox."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    infra = intake_bootstrap.bootstrap(settings)
    try:
        with infra.session_factory.begin() as session:
            services.create_organisation(session, lambda env: infra.emit(session, env), name=name,
                                         role="coordinator", levels=["HBO"])
    finally:
        infra.engine.dispose()
        root.handlers[:], root.level = handlers, level


def rule_expression() -> str:
    (rule,) = [r for g in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for r in g["rules"]
               if r.get("alert") == ALERT]
    return str(rule["expr"])


def test_a_relay_that_cannot_publish_fires_the_outbox_alert_and_ends_it_once_it_publishes(
        prometheus_binary: str, intake_worker: tuple[EmbeddedBroker, Settings, int], prometheus: Prometheus) -> None:
    broker, settings, _ = intake_worker
    expr, age, waiting = rule_expression(), 'werkplaats_outbox_oldest_age_seconds{service="intake"}', \
        'werkplaats_outbox_waiting{service="intake"}'
    wait_until(lambda: prometheus.value("up") == 1, timeout=30, what="Prometheus scraping the worker")

    # the broker answers: what is emitted is published, and the outbox stays empty
    add_organisation(settings, "Organisatie vooraf")
    wait_until(lambda: prometheus.value(waiting) == 0 and prometheus.value(age) == 0, timeout=30,
               what="the first message published")
    assert prometheus.query(expr) == []

    # the broker stops: the relay cannot publish, and the outbox's oldest row ages
    broker.stop()
    add_organisation(settings, "Organisatie tijdens storing")
    wait_until(lambda: (prometheus.value(waiting) or 0) >= 1, timeout=30, what="a row waiting in the outbox")
    first = wait_until(lambda: prometheus.value(age), timeout=30, what="the outbox age above 0")
    time.sleep(3)
    later = prometheus.value(age)
    assert later is not None and later > first > 0, (first, later)
    assert prometheus.query(expr) == []  # younger than a minute: nothing to alert yet
    # every rule evaluates without error on what a service serves, and so does every panel of the dashboard
    rules = [r for g in get_json(f"{prometheus.base}/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    assert len(rules) == len(yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"])
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    for panel_expr in dashboard_expressions():
        prometheus.query(re.sub(r"\$__\w+", "1m", panel_expr))  # an error answers 400: urlopen raises

    # past a minute the rule's expression holds, and the alert fires
    result = wait_until(lambda: prometheus.query(expr), timeout=120, what="the alert rule's expression true")
    assert [r["metric"] for r in result] == [{"service": "intake"}]
    assert float(result[0]["value"][1]) > 60
    (alert,) = wait_until(lambda: [a for a in prometheus.alerts(ALERT) if a["state"] == "firing"], timeout=30,
                          what="the alert firing")
    assert alert["labels"]["service"] == "intake" and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"].startswith("intake: het oudste bericht in de outbox wacht al ")
    assert alert["annotations"]["summary_en"].startswith("intake: the oldest outbox message has waited ")

    # the broker is back: the relay publishes what waited, and the alert ends
    broker.start()
    wait_until(lambda: prometheus.value(waiting) == 0, timeout=60, what="the outbox published")
    wait_until(lambda: prometheus.query(expr) == [] and prometheus.alerts(ALERT) == [], timeout=30,
               what="the alert ended")
