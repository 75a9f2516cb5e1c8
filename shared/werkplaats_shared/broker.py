"""Broker connections: RabbitMQ (amqp://) in production, the embedded Redis locally."""

from __future__ import annotations

from kombu.connection import Connection

from . import redis_transport
from .config import Settings
from .topology import Topology

redis_transport.install()  # the embedded broker: one delivery tag per queue copy

HEARTBEAT_SECONDS = 30
# Every connection attempt and publish retry is bounded.
CONNECT_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "amqps://", "pyamqp://"))


def connect(settings: Settings) -> Connection:
    options: dict[str, object] = {}
    if is_amqp(settings.broker_url):
        options["confirm_publish"] = True
    else:
        options["visibility_timeout"] = settings.visibility_timeout
        # Look for unacknowledged messages of dead consumers on every idle poll (about 1 s), not
        # on every tenth: a killed consumer's message comes back soon after the timeout.
        options["unacked_restore_throttle"] = 1
    return Connection(
        settings.broker_url,
        heartbeat=HEARTBEAT_SECONDS if is_amqp(settings.broker_url) else 0,
        transport_options=options,
        connect_timeout=5,
    )


def sender_id(connection: Connection) -> str | None:
    """The broker user a connection authenticates as, on RabbitMQ, which sets it as the ``user_id`` of what
    it publishes and refuses any other; None on the embedded Redis, which checks no sender."""
    if connection.transport.driver_type != "amqp":
        return None
    return str(connection.userid or "guest")


def topology_for(settings: Settings) -> Topology:
    users = settings.producer_users
    return Topology(settings.namespace, quorum=is_amqp(settings.broker_url),
                    owner=settings.service if users else None, producer_users=users)


def declare_topology(settings: Settings) -> None:
    with connect(settings) as conn:
        conn.ensure_connection(**CONNECT_RETRY)
        topology_for(settings).declare_all(conn.default_channel)


def broker_reachable(settings: Settings) -> bool:
    try:
        with connect(settings) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            return True
    except Exception:  # noqa: BLE001 - any failure means not reachable
        return False
