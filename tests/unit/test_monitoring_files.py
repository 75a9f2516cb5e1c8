"""The files that run Prometheus and Grafana in production (deploy/prometheus, deploy/grafana, docker-compose.yml):
valid, checked by Prometheus's own promtool (config, rules, and the rules' unit tests in deploy/prometheus/tests),
every metric and label a rule or a dashboard panel names is one the services export, every process of the compose
stack is scraped on the port it serves its metrics on, and Grafana's dashboard reads the provisioned data source.

promtool comes with Debian's ``prometheus`` package (.ci/run installs it); without it those tests skip, except
under CI=true, where they fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from portal.config import PortalSettings
from werkplaats_shared.config import Settings
from werkplaats_shared.service import METRICS_PORT_STEP

from ..conftest import IN_CI
from .test_compose import APP_CONTAINERS, container, containers, env
from .test_metrics_catalogue import registered

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "werkplaats.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "werkplaats.yml"
SCRAPED = [*APP_CONTAINERS, "portal"]

# series Prometheus makes itself: a scrape's success and the alerts' state
BUILT_IN = {"up": {"job", "instance"}, "ALERTS": {"alertname", "alertstate", "severity"}}
TARGET_LABELS = {"job", "instance"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


# -- what the services export ------------------------------------------------------------------------------


def exported(tmp_path: Path) -> dict[str, set[str]]:
    """Every series name the services serve, with its labels (a histogram's buckets with ``le``)."""
    names: dict[str, set[str]] = {name: set(labels) for name, labels in BUILT_IN.items()}
    for name, kind, labels in registered(tmp_path):
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[name + suffix] = set(labels) | ({"le"} if suffix == "_bucket" else set())
        else:
            names[name] = set(labels)
    return names


# -- a small PromQL reader, from the language's definition: selectors, label matchers, grouping ----------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def _plain(expr: str) -> str:
    expr = re.sub(r"\$__\w+|\$\{\w+\}", "5m", expr)  # Grafana's interval variables
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no identifier inside a string counts


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, labels its matchers name) of every vector selector in ``expr``."""
    plain = _plain(expr)
    found: list[tuple[str, set[str]]] = []
    without_groups = GROUPING.sub(" ", plain)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_groups)
    without_offsets = re.sub(r"\boffset\s+\S+", " ", without_ranges)
    for match in IDENTIFIER.finditer(without_offsets):
        name, rest = match.group(), without_offsets[match.end():]
        before = without_offsets[match.start() - 1] if match.start() else " "
        if name.lower() in KEYWORDS or before.isdigit() or before == ".":
            continue  # a keyword, or the exponent of a number (1e3)
        if _inside_braces(without_offsets, match.start()):
            continue  # a label name inside a matcher
        if rest.lstrip().startswith("(") and not rest.startswith("{"):
            continue  # a function or an aggregation
        matchers = re.match(r"\{([^}]*)\}", rest)
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers.group(1))) if matchers else set()
        found.append((name, labels))
    return found


def _inside_braces(text: str, position: int) -> bool:
    return text.rfind("{", 0, position) > text.rfind("}", 0, position)


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in GROUPING.findall(_plain(expr)) for label in group.split(",") if label.strip()}


def test_the_promql_reader_finds_the_metrics_and_labels_an_expression_names() -> None:
    expr = ('histogram_quantile(0.95, sum by (stage, le) (rate(a_seconds_bucket{stage=~"x|y", job!="b"}'
            '[$__rate_interval]))) / on (stage) group_left b_total offset 5m > 1e3 and c')
    assert selectors(expr) == [("a_seconds_bucket", {"stage", "job"}), ("b_total", set()), ("c", set())]
    assert grouping_labels(expr) == {"stage", "le"}
    assert selectors('sum(increase(d{route="/batches",status=~"2.."}[1m])) by (service)') == [
        ("d", {"route", "status"})]


def check_names(expr: str, known: dict[str, set[str]]) -> list[str]:
    problems = []
    used = selectors(expr)
    assert used, f"no metric in {expr!r}"
    for name, labels in used:
        if name not in known:
            problems.append(f"{name} (in {expr!r}) is no metric the services export")
        elif unknown := labels - known[name] - TARGET_LABELS:
            problems.append(f"{name} has no label {sorted(unknown)} (in {expr!r})")
    available = set().union(*(known.get(name, set()) for name, _ in used)) | TARGET_LABELS
    if unknown_groups := grouping_labels(expr) - available:
        problems.append(f"grouping by {sorted(unknown_groups)}, which none of its metrics has (in {expr!r})")
    return problems


def test_every_metric_and_label_the_alert_rules_name_is_exported(tmp_path: Path) -> None:
    known = exported(tmp_path)
    problems = [p for rule in rules() for p in check_names(rule["expr"], known)]
    assert not problems, "\n".join(problems)


def test_every_metric_and_label_the_dashboard_names_is_exported(tmp_path: Path) -> None:
    known = exported(tmp_path)
    problems = [p for expr in dashboard_expressions() for p in check_names(expr, known)]
    assert not problems, "\n".join(problems)


def test_a_metric_the_services_do_not_export_is_found(tmp_path: Path) -> None:
    known = exported(tmp_path)
    assert check_names('sum by (queue) (werkplaats_dead_letter_queue_messages)', known) == []
    assert check_names("werkplaats_dead_letter_messages > 0", known)  # a misspelt name
    assert check_names('werkplaats_outbox_waiting{queue="x"}', known)  # a label it does not have
    assert check_names("sum by (policy) (werkplaats_outbox_waiting)", known)  # grouping by a foreign label


# -- the alert rules ---------------------------------------------------------------------------------------

# what needs a person (issue 18), and the metric each alert must watch
REQUIRED_ALERTS = {
    "WerkplaatsDeadLetters": "werkplaats_dead_letter_queue_messages",
    "WerkplaatsOutboxStuck": "werkplaats_outbox_oldest_age_seconds",
    "WerkplaatsMatchingRunFailed": "werkplaats_matching_runs_total",
    "WerkplaatsPlanJobFailed": "werkplaats_plan_jobs_total",
    "WerkplaatsWorkPastLease": "werkplaats_work_items",
    "WerkplaatsNoticesFailing": "werkplaats_notice_deliveries_total",
}


def test_the_alerts_cover_what_needs_a_person_each_with_a_dutch_and_english_summary() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert len(by_name) == len(rules()), "an alert name is used twice"
    for alert, metric in REQUIRED_ALERTS.items():
        assert alert in by_name, f"no alert rule {alert}"
        assert metric in {name for name, _ in selectors(by_name[alert]["expr"])}, f"{alert} does not watch {metric}"
    assert re.search(r"werkplaats_outbox_oldest_age_seconds\)\s*>\s*60\b", by_name["WerkplaatsOutboxStuck"]["expr"])
    for alert, rule in by_name.items():
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("summary_en"), f"{alert}: summary and summary_en"
        assert annotations["summary"] != annotations["summary_en"], f"{alert}: the Dutch summary is not translated"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical")


def test_every_alert_has_a_unit_test_that_sees_it_fire_and_one_that_sees_it_quiet() -> None:
    tests = load_yaml(ALERT_TESTS)
    assert [(ALERT_TESTS.parent / f).resolve() for f in tests["rule_files"]] == [ALERTS.resolve()]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert alerts <= fired, f"no test sees these fire: {sorted(alerts - fired)}"
    assert alerts <= quiet, f"no test sees these stay quiet: {sorted(alerts - quiet)}"


# -- promtool ------------------------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool not installed (apt-get install prometheus; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


def run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_every_dashboard_expression(tmp_path: Path) -> None:
    """Each panel's query, Grafana's interval variables filled in, parsed by Prometheus's own parser."""
    exprs = [re.sub(r"\$__\w+", "5m", expr) for expr in dashboard_expressions()]
    recording = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"werkplaats:dashboard_panel_{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(recording), encoding="utf-8")
    result = run_promtool("check", "rules", str(tmp_path / "dashboard_rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


# -- compose: what is scraped, and Grafana's provisioning ------------------------------------------------------


def metrics_endpoint(name: str) -> tuple[str, list[int]]:
    """Where a container's processes serve /metrics: its host, and one port per process (an API served by
    several processes: the k-th forked one on the metrics port + k * METRICS_PORT_STEP)."""
    variables = {key: str(value) for key, value in env(name).items()}
    if name == "portal":
        portal = PortalSettings.from_env(variables)
        return portal.metrics_host, [portal.metrics_port]
    settings = Settings.from_env(name.rsplit("-", 1)[0], variables)
    processes = settings.http_processes if settings.process == "api" else 1
    return settings.metrics_host, [settings.metrics_port + k * METRICS_PORT_STEP for k in range(processes)]


def scrape_jobs() -> dict[str, tuple[list[str], list[int]]]:
    jobs = {}
    for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        names = {tuple(sd["names"]) for sd in job["dns_sd_configs"]}
        assert len(names) == 1, f"{job['job_name']}: one container per job"
        jobs[job["job_name"]] = (list(names.pop()), sorted(int(sd["port"]) for sd in job["dns_sd_configs"]))
    return jobs


def test_prometheus_scrapes_every_process_on_the_port_it_serves_its_metrics_on() -> None:
    jobs = scrape_jobs()
    assert sorted(jobs) == sorted(SCRAPED)
    for name in SCRAPED:
        host, ports = metrics_endpoint(name)
        assert host == "0.0.0.0", f"{name}: inside compose the metrics port must listen on every address"
        assert jobs[name] == ([name], ports), f"{name} serves its metrics on {ports}"
        published = [str(p).rsplit(":", 1)[-1] for p in container(name).get("ports", [])]
        for port in ports:
            assert str(port) not in published, f"{name}: never publish the metrics port"



def mounts(name: str) -> dict[str, Path]:
    found = {}
    for volume in container(name).get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("./"):
            assert rest.endswith(":ro"), f"{name}: mount {source} read-only"
            found[rest.removesuffix(":ro")] = (ROOT / source).resolve()
    return found


def test_prometheus_runs_with_the_config_and_rules_from_deploy() -> None:
    prometheus = container("prometheus")
    config = next(arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file="))
    mounted = mounts("prometheus")
    assert mounted[config] == PROMETHEUS_CONFIG
    for rule_file in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        assert mounted[str(Path(config).parent / rule_file)] == (PROMETHEUS_DIR / rule_file).resolve()
    assert "9090" in " ".join(str(p) for p in prometheus["ports"])


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboard() -> None:
    mounted = mounts("grafana")
    assert mounted["/etc/grafana/provisioning/datasources"] == DATASOURCES.parent
    assert mounted["/etc/grafana/provisioning/dashboards"] == DASHBOARD_PROVIDERS.parent
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus"
    url = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"])
    assert url and url.group(1) in containers() and url.group(1) == "prometheus"
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert mounted[provider["options"]["path"]] == DASHBOARD.parent
    assert container("grafana")["depends_on"]["prometheus"]["condition"] == "service_healthy"
    uses = {json.dumps(p["datasource"], sort_keys=True) for p in panels()}
    uses |= {json.dumps(t["datasource"], sort_keys=True) for p in panels() for t in p["targets"]}
    assert uses == {json.dumps({"type": "prometheus", "uid": source["uid"]}, sort_keys=True)}


def test_the_dashboard_shows_the_round_the_queues_the_outbox_and_http_errors_and_latency() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["title"] and panel["targets"], panel
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
    used = {name for expr in dashboard_expressions() for name, _ in selectors(expr)}
    # the round from submission to notices; queues and dead-letter queues; outbox; HTTP errors and latency
    assert {"werkplaats_http_requests_total", "werkplaats_matching_runs_total",
            "werkplaats_matching_run_stage_seconds_bucket", "werkplaats_plan_jobs_total",
            "werkplaats_plan_job_stage_seconds_bucket", "werkplaats_notice_deliveries_total",
            "werkplaats_queue_messages", "werkplaats_dead_letter_queue_messages",
            "werkplaats_messages_dead_lettered_total", "werkplaats_outbox_waiting",
            "werkplaats_outbox_oldest_age_seconds", "werkplaats_http_request_duration_seconds_bucket"} <= used
    exprs = " ".join(dashboard_expressions())
    assert 'route="/batches",method="POST"' in exprs  # batches submitted
    assert 'status=~"5.."' in exprs  # server errors
    # every panel fits the 24-column grid
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in data["panels"])
