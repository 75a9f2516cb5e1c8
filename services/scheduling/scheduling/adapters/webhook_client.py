"""POSTing notices to webhooks over HTTP(S): the target is checked on the addresses the request then
connects to (so a name cannot be re-pointed between the check and the connection), redirects are not
followed, every network step has a timeout, and the answer body is read only up to a small limit."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ..domain.webhooks import Resolver, Target, TargetRefused, delivered, vet_target

MAX_RESPONSE_BYTES = 4096
USER_AGENT = "Werkplaats-Webhook/1"


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None and delivered(self.status_code)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class WebhookClient:
    def __init__(self, *, resolve: Resolver = system_resolve, allow_loopback: bool = False,
                 timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        self.resolve, self.allow_loopback, self.timeout = resolve, allow_loopback, timeout
        self.tls = tls or ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        started = time.monotonic()

        def result(status: int | None, error: str | None) -> DeliveryResult:
            return DeliveryResult(status, error, int((time.monotonic() - started) * 1000))

        try:
            target, addresses = vet_target(url, self.resolve, self.allow_loopback)
        except TargetRefused as exc:
            return result(None, f"target refused: {exc.reason}")
        conn: Any = (_PinnedHTTPSConnection(target, addresses[0], self.timeout, self.tls)
                     if target.scheme == "https" else _PinnedHTTPConnection(target, addresses[0], self.timeout))
        try:
            conn.request("POST", target.path, body=body, headers={
                **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "Content-Length": str(len(body))})
            response = conn.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            status = int(response.status)
        except TimeoutError:
            return result(None, "timeout")
        except ssl.SSLError:
            return result(None, "TLS error")
        except ConnectionRefusedError:
            return result(None, "connection refused")
        except http.client.HTTPException:
            return result(None, "invalid HTTP response")
        except OSError as exc:
            return result(None, f"network error: {type(exc).__name__}")
        finally:
            conn.close()
        if 300 <= status < 400:
            return result(status, "redirect not followed")
        if not delivered(status):
            return result(status, f"HTTP {status}")
        return result(status, None)
