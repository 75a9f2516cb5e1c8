"""The portal's settings, read from the environment once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from werkplaats_shared.config import metrics_port

DEFAULT_PORT = 8100
SERVICE_URLS = {"intake": "http://127.0.0.1:8101", "matching": "http://127.0.0.1:8102",
                "scheduling": "http://127.0.0.1:8103"}
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class PortalSettings:
    secret_key: str
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_PORT
    intake_url: str = SERVICE_URLS["intake"]
    matching_url: str = SERVICE_URLS["matching"]
    scheduling_url: str = SERVICE_URLS["scheduling"]
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    data_dir: str = ".werkplaats"
    session_store: str = ""  # empty: files under data_dir; redis://host:port/db for several replicas
    log_level: str = "INFO"
    trusted_proxies: int = 0  # reverse proxies in front of the portal whose X-Forwarded-For is trusted
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # Prometheus /metrics on a port of its own (werkplaats_shared.metrics); 0: none

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over https, except on a plain-http local address."""
        return not self.public_url.startswith("http://")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PortalSettings:
        e = os.environ if env is None else env
        secret = e.get("WERKPLAATS_SECRET_KEY", "")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"WERKPLAATS_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters (portal)")
        port = int(e.get("WERKPLAATS_HTTP_PORT", DEFAULT_PORT))
        return cls(
            secret_key=secret,
            http_host=e.get("WERKPLAATS_HTTP_HOST", "127.0.0.1"),
            http_port=port,
            intake_url=e.get("WERKPLAATS_INTAKE_URL", SERVICE_URLS["intake"]).rstrip("/"),
            matching_url=e.get("WERKPLAATS_MATCHING_URL", SERVICE_URLS["matching"]).rstrip("/"),
            scheduling_url=e.get("WERKPLAATS_SCHEDULING_URL", SERVICE_URLS["scheduling"]).rstrip("/"),
            public_url=e.get("WERKPLAATS_PORTAL_URL", f"http://127.0.0.1:{port}").rstrip("/"),
            data_dir=e.get("WERKPLAATS_DATA_DIR", ".werkplaats"),
            session_store=e.get("WERKPLAATS_PORTAL_SESSION_STORE", ""),
            log_level=e.get("WERKPLAATS_LOG_LEVEL", "INFO"),
            trusted_proxies=max(0, min(5, int(e.get("WERKPLAATS_TRUSTED_PROXIES", "0") or 0))),
            metrics_host=e.get("WERKPLAATS_METRICS_HOST", "127.0.0.1"),
            metrics_port=metrics_port(e, port),
        )
