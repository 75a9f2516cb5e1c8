"""Start and stop the whole system as separate local processes (used by the run command and tests)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ..config import DEFAULT_PORTS
from .embedded_broker import EmbeddedBroker

SERVICES = ("intake", "matching", "scheduling")
PORTAL = "portal"


@dataclass
class StackConfig:
    data_dir: str
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    smtp_port: int = 1025
    namespace: str = ""
    broker_url: str | None = None  # None: start the embedded broker
    database_urls: dict[str, str] = field(default_factory=dict)  # default: SQLite per service
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    portal: bool = False  # also start the web portal, on ports["portal"]


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = os.path.abspath(config.data_dir)
        self.broker = EmbeddedBroker(self.data_dir) if config.broker_url is None else None
        self.smtp: subprocess.Popen[bytes] | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def maildir(self) -> str:
        return os.path.join(self.data_dir, "mail")

    @property
    def broker_url(self) -> str:
        return self.broker.url if self.broker else str(self.config.broker_url)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[service]}"

    @property
    def portal_url(self) -> str:
        return self.url(PORTAL)

    def portal_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKPLAATS_")}
        env.update({
            "WERKPLAATS_DATA_DIR": self.data_dir,
            "WERKPLAATS_HTTP_PORT": str(self.config.ports[PORTAL]),
            "WERKPLAATS_INTAKE_URL": self.url("intake"),
            "WERKPLAATS_MATCHING_URL": self.url("matching"),
            "WERKPLAATS_SCHEDULING_URL": self.url("scheduling"),
            "WERKPLAATS_SECRET_KEY": self.env("intake")["WERKPLAATS_SECRET_KEY"],
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.config.service_env.get(PORTAL, {}))
        return env

    def env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKPLAATS_")}
        if self.config.portal:
            # links in sign-in and invitation mails open the portal; intake trusts the portal's forwarded address
            env.update({"WERKPLAATS_PORTAL_URL": self.url(PORTAL)})
            if service == "intake":
                env["WERKPLAATS_TRUSTED_PROXIES"] = "1"
        env.update({
            "WERKPLAATS_DATA_DIR": self.data_dir,
            "WERKPLAATS_BROKER_URL": self.broker_url,
            "WERKPLAATS_NAMESPACE": self.config.namespace,
            "WERKPLAATS_HTTP_PORT": str(self.config.ports[service]),
            "WERKPLAATS_SMTP_PORT": str(self.config.smtp_port),
            "PYTHONUNBUFFERED": "1",
        })
        if service == "matching":  # fetches large batch snapshots from intake (claim-check)
            env["WERKPLAATS_INTAKE_URL"] = self.url("intake")
        if service in self.config.database_urls:
            env["WERKPLAATS_DATABASE_URL"] = self.config.database_urls[service]
        # one random signing key (links, tokens) for this local data directory only, kept so that restarts
        # keep links and tokens valid
        os.makedirs(self.data_dir, exist_ok=True)
        key_file = os.path.join(self.data_dir, "scheduling-secret-key")
        if not os.path.exists(key_file):
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        with open(key_file, encoding="utf-8") as fh:
            env["WERKPLAATS_SECRET_KEY"] = fh.read().strip()
        env.update(self.config.extra_env)
        env.update(self.config.service_env.get(service, {}))
        return env

    def start(self, timeout: float = 60.0) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        if self.broker:
            self.broker.start()
        self.start_smtp()
        for service in SERVICES:
            self.start_service(service)
        if self.config.portal:
            self.start_service(PORTAL)
        self.wait_ready(timeout, (*SERVICES, PORTAL) if self.config.portal else SERVICES)

    def start_smtp(self) -> None:
        self.smtp = subprocess.Popen(
            [sys.executable, "-m", "werkplaats_shared.devstack.smtp_sink", "--port",
             str(self.config.smtp_port), "--maildir", self.maildir],
            stdout=subprocess.DEVNULL, stderr=self._log("smtp"),
        )

    def _log(self, name: str) -> int:
        return os.open(os.path.join(self.data_dir, f"{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                       0o600)

    def start_service(self, service: str) -> None:
        log_fd = self._log(service)
        try:
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", service], env=self.portal_env() if service == PORTAL else self.env(service),
                stdout=log_fd, stderr=log_fd,
            )
        finally:
            os.close(log_fd)

    def kill_service(self, service: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.pop(service)
        proc.send_signal(sig)
        proc.wait(30)

    def wait_ready(self, timeout: float = 60.0, services: tuple[str, ...] = SERVICES) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            service = pending[0]
            proc = self.processes.get(service)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{service} exited with {proc.returncode}; see {service}.log in {self.data_dir}")
            try:
                with urllib.request.urlopen(self.url(service) + "/ready", timeout=2) as resp:  # noqa: S310
                    if json.load(resp).get("status") == "ready":
                        pending.pop(0)
                        continue
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} not ready after {timeout}s; see {service}.log in {self.data_dir}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if self.smtp and self.smtp.poll() is None:
            self.smtp.terminate()
            try:
                self.smtp.wait(10)
            except subprocess.TimeoutExpired:
                self.smtp.kill()
        if self.broker:
            self.broker.stop()

    def admin(self, *args: str, stdin: str | None = None) -> Any:
        """Run ``python -m intake admin ...`` against this stack's intake database."""
        out = subprocess.run([sys.executable, "-m", "intake", "admin", *args], env=self.env("intake"),
                             check=True, capture_output=True, text=True, input=stdin)
        return json.loads(out.stdout)
