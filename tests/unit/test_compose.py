"""The structure of docker-compose.yml: infrastructure, one API and one worker container per service,
health checks and start order, configuration only through ENV_VARS, a database per service that the
PostgreSQL init script creates, a broker user per service that the RabbitMQ definitions create."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml
from werkplaats_shared.config import ENV_VARS, Settings
from werkplaats_shared.topology import Topology, rabbitmq_definitions

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = ("intake", "matching", "scheduling")
PROCESSES = ("api", "worker")
APP_CONTAINERS = [f"{service}-{process}" for service in SERVICES for process in PROCESSES]
INFRASTRUCTURE = ("rabbitmq", "postgres")
INITDB_DIR = "/docker-entrypoint-initdb.d"


@functools.cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def containers() -> dict[str, Any]:
    services = compose()["services"]
    assert isinstance(services, dict)
    return services


def container(name: str) -> dict[str, Any]:
    assert name in containers(), f"docker-compose.yml has no service {name!r}"
    spec = containers()[name]
    assert isinstance(spec, dict)
    return spec


def env(name: str) -> dict[str, Any]:
    environment = container(name).get("environment", {})
    assert isinstance(environment, dict), f"{name}: write environment as a mapping"
    return environment


def url_of(name: str, variable: str) -> SplitResult:
    value = env(name).get(variable)
    assert isinstance(value, str) and value, f"{name} sets no {variable}"
    return urlsplit(value)


def depends_on(name: str) -> dict[str, Any]:
    deps = container(name).get("depends_on", {})
    assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
    return deps


def test_infrastructure_and_all_app_containers_are_defined() -> None:
    assert container("rabbitmq")["image"].startswith("rabbitmq:3.13-management")
    assert container("postgres")["image"].split(":")[1].startswith("16")
    assert set(APP_CONTAINERS) <= set(containers())


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_container_runs_its_service_and_process_from_the_dockerfile(name: str) -> None:
    service, process = name.rsplit("-", 1)
    spec = container(name)
    build = spec["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).is_file()
    assert spec["command"] == ["python", "-m", service]
    assert env(name)["WERKPLAATS_PROCESS"] == process
    assert env(name)["WERKPLAATS_HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", [n for n in APP_CONTAINERS if n.endswith("-api")])
def test_each_api_is_served_by_as_many_processes_as_its_container_has_cores(name: str) -> None:
    processes = int(env(name)["WERKPLAATS_HTTP_PROCESSES"])
    assert processes >= 2
    assert float(container(name)["cpus"]) == processes
    assert Settings.from_env(name.split("-")[0], env(name)).http_processes == processes


def test_app_containers_share_one_image() -> None:
    images = {container(name).get("image") for name in APP_CONTAINERS}
    assert len(images) == 1 and None not in images


@pytest.mark.parametrize("name", sorted(compose()["services"]))
def test_every_container_has_a_healthcheck(name: str) -> None:
    check = container(name).get("healthcheck")
    assert isinstance(check, dict), f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_infrastructure_healthchecks() -> None:
    assert container("rabbitmq")["healthcheck"]["test"][1:] == ["rabbitmq-diagnostics", "-q", "ping"]
    assert container("postgres")["healthcheck"]["test"][1] == "pg_isready"


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_container_depends_on_healthy_broker_and_database(name: str) -> None:
    deps = depends_on(name)
    for infra in INFRASTRUCTURE:
        assert deps.get(infra, {}).get("condition") == "service_healthy", f"{name} -> {infra}"


def test_every_dependency_exists_and_is_waited_for_until_healthy() -> None:
    for name in containers():
        for target, condition in depends_on(name).items():
            assert target in containers(), f"{name} depends on unknown {target}"
            assert condition.get("condition") == "service_healthy", f"{name} -> {target}"
            assert "healthcheck" in container(target)


@pytest.mark.parametrize("service", SERVICES)
def test_worker_starts_after_its_api_so_migrations_never_run_twice_at_once(service: str) -> None:
    assert depends_on(f"{service}-worker").get(f"{service}-api", {}).get("condition") == "service_healthy"


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_container_sets_only_documented_variables(name: str) -> None:
    unknown = set(env(name)) - set(ENV_VARS)
    assert not unknown, f"{name} sets variables the services do not read: {sorted(unknown)}"
    for key, value in env(name).items():
        assert isinstance(value, str), f"{name}: quote {key} so compose passes it verbatim"
    assert "WERKPLAATS_FAULT" not in env(name)


@pytest.mark.parametrize("name", [n for n in APP_CONTAINERS if n.endswith("-api")])
def test_api_port_is_published_to_the_port_the_process_listens_on(name: str) -> None:
    port = env(name)["WERKPLAATS_HTTP_PORT"]
    targets = [str(p).rsplit(":", 1)[-1] for p in container(name).get("ports", [])]
    assert port in targets


def test_each_service_has_its_own_database() -> None:
    urls = {}
    for service in SERVICES:
        api, worker = (url_of(f"{service}-{p}", "WERKPLAATS_DATABASE_URL") for p in PROCESSES)
        assert api == worker, f"{service}: api and worker must share one database"
        assert api.scheme == "postgresql+psycopg"
        assert api.hostname == "postgres"
        urls[service] = api
    databases = [u.path.lstrip("/") for u in urls.values()]
    assert all(databases) and len(set(databases)) == len(SERVICES)
    assert len({u.username for u in urls.values()}) == len(SERVICES)


def init_script() -> str:
    scripts = []
    for volume in container("postgres").get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.startswith(INITDB_DIR):
            scripts.append(ROOT / source)
    assert len(scripts) == 1, f"mount exactly one init script into {INITDB_DIR}"
    text = scripts[0].read_text(encoding="utf-8")
    return re.sub(r"--[^\n]*", "", text)


def test_postgres_init_script_creates_every_database_and_its_owner() -> None:
    sql = init_script()
    owners = {m.group(1): m.group(2) for m in re.finditer(
        r"CREATE\s+DATABASE\s+\"?(\w+)\"?(?:\s+(?:WITH\s+)?OWNER\s*=?\s*\"?(\w+)\"?)?", sql, re.IGNORECASE)}
    passwords = {m.group(1): m.group(2) for m in re.finditer(
        r"CREATE\s+(?:ROLE|USER)\s+\"?(\w+)\"?[^;]*?\bLOGIN\b[^;]*?PASSWORD\s+'([^']*)'", sql, re.IGNORECASE)}
    for service in SERVICES:
        url = url_of(f"{service}-api", "WERKPLAATS_DATABASE_URL")
        database = url.path.lstrip("/")
        assert database in owners, f"init script does not create database {database!r}"
        assert owners[database] == url.username, f"{database} must be owned by {url.username}"
        assert passwords.get(str(url.username)) == url.password, f"role {url.username}: password differs"


def test_each_service_connects_to_rabbitmq_as_its_own_broker_user() -> None:
    users = {}
    for service in SERVICES:
        api, worker = (url_of(f"{service}-{p}", "WERKPLAATS_BROKER_URL") for p in PROCESSES)
        assert api == worker, f"{service}: api and worker must share one broker user"
        assert (api.scheme, api.hostname) == ("amqp", "rabbitmq")
        assert api.username == service, f"{service} must connect as its own broker user"
        users[service] = api
    assert len({u.username for u in users.values()}) == len(SERVICES)
    assert env("rabbitmq")["RABBITMQ_DEFAULT_USER"] not in {u.username for u in users.values()}


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_consumers_accept_only_the_producers_own_broker_users(name: str) -> None:
    service = name.rsplit("-", 1)[0]
    settings = Settings.from_env(service, env(name))  # also checks the URL's user is the service's own
    assert settings.producer_users == {s: s for s in SERVICES}


def rabbitmq_mounts() -> dict[str, Path]:
    mounts = {}
    for volume in container("rabbitmq").get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("./"):
            assert rest.endswith(":ro"), f"mount {source} read-only"
            mounts[rest.removesuffix(":ro")] = ROOT / source
    return mounts


def render_definitions(tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    mounts = rabbitmq_mounts()
    entrypoint = container("rabbitmq")["entrypoint"]
    assert entrypoint[0] == "/bin/sh" and entrypoint[1] in mounts
    run_env = {"PATH": os.environ["PATH"], **variables,
               "DEFINITIONS_TEMPLATE": str(mounts["/etc/werkplaats/definitions.json"]),
               "DEFINITIONS_FILE": str(tmp_path / "definitions.json")}
    return subprocess.run(["sh", str(mounts[entrypoint[1]]), "true"], env=run_env, capture_output=True,
                          text=True, timeout=30, check=False)


def test_rabbitmq_definitions_are_generated_from_the_topology() -> None:
    template = json.loads(rabbitmq_mounts()["/etc/werkplaats/definitions.json"].read_text(encoding="utf-8"))
    assert template == rabbitmq_definitions(), (
        "deploy/rabbitmq/definitions.json is out of date: "
        ".venv/bin/python -m werkplaats_shared.topology > deploy/rabbitmq/definitions.json")


def test_rabbitmq_loads_the_rendered_definitions_at_boot() -> None:
    spec = container("rabbitmq")
    assert spec["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]  # the image's own start
    conf = rabbitmq_mounts()["/etc/rabbitmq/conf.d/20-werkplaats.conf"].read_text(encoding="utf-8")
    script = rabbitmq_mounts()[spec["entrypoint"][1]].read_text(encoding="utf-8")
    output = re.search(r'output="\$\{DEFINITIONS_FILE:-([^}]+)\}"', script)
    assert output is not None
    assert re.search(rf"^load_definitions\s*=\s*{re.escape(output.group(1))}$", conf, re.MULTILINE)


def test_broker_users_and_passwords_match_the_services_urls(tmp_path: Path) -> None:
    result = render_definitions(tmp_path, {k: str(v) for k, v in env("rabbitmq").items()})
    assert result.returncode == 0, result.stderr
    definitions = json.loads((tmp_path / "definitions.json").read_text(encoding="utf-8"))
    passwords = {u["name"]: u["password"] for u in definitions["users"]}
    permissions = {p["user"]: p for p in definitions["permissions"]}
    for service in SERVICES:
        url = url_of(f"{service}-api", "WERKPLAATS_BROKER_URL")
        assert passwords[str(url.username)] == url.password, f"broker user {url.username}: password differs"
        assert permissions[str(url.username)]["configure"] == Topology().permissions(service)["configure"]
    admin = env("rabbitmq")["RABBITMQ_DEFAULT_USER"]
    assert passwords[admin] == env("rabbitmq")["RABBITMQ_DEFAULT_PASS"]
    assert permissions[admin]["configure"] == ".*"


@pytest.mark.parametrize(("variable", "value", "complaint"), [
    ("MATCHING_BROKER_PASSWORD", "", "set MATCHING_BROKER_PASSWORD"),
    ("MATCHING_BROKER_PASSWORD", 'pw","tags":["administrator"]', "letters, digits"),
    ("RABBITMQ_DEFAULT_USER", "admin|x", "letters, digits"),
])
def test_definitions_are_not_rendered_from_a_missing_or_unsafe_value(
        tmp_path: Path, variable: str, value: str, complaint: str) -> None:
    variables = {k: str(v) for k, v in env("rabbitmq").items()}
    variables[variable] = value
    result = render_definitions(tmp_path, variables)
    assert result.returncode != 0
    assert complaint in result.stderr and variable in result.stderr
    assert not (tmp_path / "definitions.json").exists()


def test_a_broker_password_can_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "intake-password"
    secret.write_text("s3cret-from-file\n", encoding="utf-8")
    variables = {k: str(v) for k, v in env("rabbitmq").items() if k != "INTAKE_BROKER_PASSWORD"}
    result = render_definitions(tmp_path, {**variables, "INTAKE_BROKER_PASSWORD_FILE": str(secret)})
    assert result.returncode == 0, result.stderr
    users = json.loads((tmp_path / "definitions.json").read_text(encoding="utf-8"))["users"]
    assert {"name": "intake", "password": "s3cret-from-file", "tags": []} in users


def test_scheduling_sends_notices_to_the_smtp_container() -> None:
    for process in PROCESSES:
        smtp_host = env(f"scheduling-{process}")["WERKPLAATS_SMTP_HOST"]
        assert smtp_host in containers()
    assert env("scheduling-worker")["WERKPLAATS_SMTP_HOST"] in depends_on("scheduling-worker")


def test_nothing_is_left_for_compose_to_interpolate() -> None:
    # compose replaces $VAR and ${VAR} from the caller's environment; this file must not depend on it
    assert not re.search(r"(?<!\$)\$(?!\$)", COMPOSE_FILE.read_text(encoding="utf-8"))


class _ReadyHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ready_server() -> Iterator[tuple[int, type[_ReadyHandler]]]:
    handler = type("Handler", (_ReadyHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_app_healthcheck_passes_only_when_ready(ready_server: tuple[int, type[_ReadyHandler]]) -> None:
    port, handler = ready_server
    assert all(env(name).get("WERKPLAATS_HTTP_PORT") for name in APP_CONTAINERS)
    commands = {tuple(container(name)["healthcheck"]["test"]) for name in APP_CONTAINERS}
    for command in commands:
        assert command[:2] == ("CMD", "python"), "the image has python, not curl"
        argv = [sys.executable, *command[2:]]
        run_env = {**os.environ, "WERKPLAATS_HTTP_PORT": str(port)}
        for status, healthy in ((200, True), (503, False)):
            handler.status = status
            result = subprocess.run(argv, env=run_env, capture_output=True, timeout=30, check=False)
            assert (result.returncode == 0) == healthy, (status, result.stderr.decode())
