"""Rules for webhooks: which targets are allowed, how a delivery is signed, how often it is retried.

A target must be an https URL whose host resolves only to public addresses (no loopback, private,
link-local, multicast or reserved ranges). The rule is applied when a webhook is registered and again
right before every delivery, on the addresses the delivery then connects to. Tests may allow loopback
targets (http or https) with WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK; nothing else is relaxed by it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
MAX_ATTEMPTS = 6
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
SIGNATURE_SCHEME = "sha256"

Resolver = Callable[[str, int], list[str]]


class TargetRefused(ValueError):
    """A webhook URL or address that may not be used; ``reason`` is safe to show and to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def parse_target(url: str, allow_loopback: bool = False) -> Target:
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise TargetRefused("URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_loopback):
        raise TargetRefused("webhook URLs must use https")
    if not parts.hostname:
        raise TargetRefused("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("URL must not contain a user name or password")
    if parts.fragment:
        raise TargetRefused("URL must not contain a fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80), path)


def address_refusal(address: str, scheme: str, allow_loopback: bool = False) -> str | None:
    """Why a resolved address may not be a webhook target, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if scheme != "https":
        return "http is allowed for loopback targets only"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a public address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "not a public address"
    return None


def vet_target(url: str, resolve: Resolver, allow_loopback: bool = False) -> tuple[Target, list[str]]:
    """Parse the URL, resolve its host and check every address; return the target and its addresses."""
    target = parse_target(url, allow_loopback)
    try:
        addresses = resolve(target.host, target.port)
    except (OSError, UnicodeError):
        raise TargetRefused("host name does not resolve") from None
    if not addresses:
        raise TargetRefused("host name does not resolve")
    for address in addresses:
        reason = address_refusal(address, target.scheme, allow_loopback)
        if reason is not None:
            raise TargetRefused(f"host resolves to a {reason}" if reason.endswith("address") else reason)
    return target, addresses


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the webhook's secret over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def next_delay(attempts_made: int) -> timedelta:
    """Exponential backoff after the given number of failed attempts (1 -> 30 s, 2 -> 60 s, ...)."""
    delay: timedelta = BACKOFF_BASE * 2 ** max(attempts_made - 1, 0)
    return min(delay, BACKOFF_CAP)


def delivered(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300
