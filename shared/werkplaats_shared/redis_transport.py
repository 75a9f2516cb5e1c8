"""The embedded broker's kombu transport: kombu's Redis transport, with one delivery tag per queue copy.

kombu gives a published message one delivery tag, and an exchange that routes it to several queues puts the
same tag on every copy. The Redis transport keeps unacknowledged messages in one hash keyed by that tag, so
the copies of two consumers overwrite each other there: when one consumer acknowledges its copy, the other
consumer's unacknowledged copy is no longer kept, and is lost if that consumer stops before it acknowledges
(its restore finds nothing under the tag). And a copy restored after its consumer stopped is routed again
through the exchange, onto every queue bound to it, so the consumers that had acknowledged their copies get
it a second time. RabbitMQ has neither problem (its tags are per channel, its requeue is per queue). Here
every copy gets a tag of its own as it is put on its queue, remembers that queue, and is restored to it alone.
kombu also makes a new Redis client object (a copy of redis-py's table of response callbacks) for every command
it sends outside the consuming loop, every publish and every ack included: a third of the outbox relay's time
went there. The channel here keeps one for its connection pool (a client holds no state of its own besides that
table; the pool hands out the connections, and a new pool gets a new client).
Two round trips per message are saved where kombu offers no way around them: a publish batch (kombu's
``Producer.batch``, one pipeline) reads each exchange's bindings once instead of once per message (an SMEMBERS per
publish was half of the relay's time), so the batch is routed as if all its messages were published at the moment it
began; after a BRPOP brought one message, the deliveries the prefetch still allows are taken at once, by a script
that moves them from the queues to the unacknowledged ones in the same step (kombu does a BRPOP and then a MULTI per
message, and a consumer that dies between the two loses that message; here the further ones are never in between);
and ``acks_together`` sends the acknowledgements of several deliveries (a consumer's batch) in one pipeline.
``install()`` (called when ``werkplaats_shared.broker`` is imported) makes this the transport of every
``redis://`` and ``redis+socket://`` URL in the process, clones of a connection included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu.transport
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from kombu.utils.uuid import uuid

QUEUE_PROPERTY = "werkplaats_queue"

# KEYS: the unacknowledged index and hash, then the queues' keys in the order to take from; ARGV: how many at most,
# the time now. Each message taken is kept as kombu keeps an unacknowledged one: the index scored by the time, the
# hash holding [message, exchange, routing key] under its delivery tag. Returns queue key, message, queue key, ...
TAKE_MANY = """
local taken = {}
local most = tonumber(ARGV[1])
for i = 3, #KEYS do
  while #taken < 2 * most do
    local item = redis.call('RPOP', KEYS[i])
    if not item then break end
    local properties = cjson.decode(item)['properties']
    local info = properties['delivery_info']
    local tag = properties['delivery_tag']
    redis.call('ZADD', KEYS[1], ARGV[2], tag)
    redis.call('HSET', KEYS[2], tag,
               '[' .. item .. ',' .. cjson.encode(info['exchange']) .. ',' .. cjson.encode(info['routing_key']) .. ']')
    taken[#taken + 1] = KEYS[i]
    taken[#taken + 1] = item
  end
end
return taken
"""


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    _ack_pipe: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: set[str] = set()  # delivery tags taken by TAKE_MANY: already kept as unacknowledged

    def append(self, message: Any, delivery_tag: Any) -> None:
        if delivery_tag in self.kept:
            self.kept.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        super().append(message, delivery_tag)

    @contextmanager
    def acks_together(self) -> Iterator[None]:
        """Acknowledgements made within are sent in one pipeline when it ends (also when it ends on an error: what
        was acknowledged is acknowledged). Should the pipeline fail, those deliveries stay unacknowledged on the
        broker and come back after the visibility timeout: at least once, as when a consumer stops before its ack."""
        if self._ack_pipe is not None:  # nested: the outer one sends them
            yield
            return
        with self.channel.conn_or_acquire() as client:
            self._ack_pipe = client.pipeline()
            try:
                yield
            finally:
                pipe, self._ack_pipe = self._ack_pipe, None
                pipe.execute()

    def ack(self, delivery_tag: Any) -> None:
        if self._ack_pipe is None:
            super().ack(delivery_tag)
            return
        self._remove_from_indices(delivery_tag, self._ack_pipe)
        virtual.QoS.ack(self, delivery_tag)


class PublishBatch(kombu_redis.PublishBatch):  # type: ignore[misc]
    """kombu's publish batch, during which the channel reads each exchange's bindings once."""

    def __init__(self, channel: Channel, max_size: int) -> None:
        super().__init__(channel, max_size)
        channel._batch_tables = {}

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.channel._batch_tables = None


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS
    _werkplaats_client: Any = None
    _batch_tables: dict[str, Any] | None = None

    _take_many: Any = None

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's: deliver the message a BRPOP brought; then take the further ones the prefetch allows, in one step."""
        delivered = bool(super()._brpop_read(**options))
        room = self.qos.can_consume_max_estimate() if self.qos.prefetch_count else 0
        if delivered and room and self.active_queues and not self._closing:
            self._deliver_more(room)
        return delivered

    def _deliver_more(self, most: int) -> None:
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in self.active_queues]
        with self.conn_or_acquire() as client:
            if self._take_many is None or self._take_many.registered_client is not client:
                self._take_many = client.register_script(TAKE_MANY)
            taken = self._take_many(keys=[self.unacked_index_key, self.unacked_key, *keys],
                                    args=[most, time.time()], client=client)
        for key, item in zip(taken[::2], taken[1::2], strict=True):
            payload = loads(bytes_to_str(item))
            self.qos.kept.add(payload["properties"]["delivery_tag"])
            self.connection._deliver(payload, bytes_to_str(key).rsplit(self.sep, 1)[0])

    def create_publish_batch(self, max_size: int) -> PublishBatch:
        return PublishBatch(self, max_size)

    def get_table(self, exchange: str) -> Any:
        tables = self._batch_tables
        if tables is None:
            return super().get_table(exchange)
        if exchange not in tables:
            tables[exchange] = super().get_table(exchange)
        return tables[exchange]

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._werkplaats_client
        if client is None or client.connection_pool is not self.pool:
            client = self._werkplaats_client = super()._create_client(asynchronous=False)
        return client

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        copy = {**message, "properties": {**message["properties"], "delivery_tag": uuid(), QUEUE_PROPERTY: queue}}
        super()._put(queue, copy, **kwargs)

    def _lookup(self, exchange: str, routing_key: str, default: str | None = None) -> list[str]:
        restoring = getattr(self, "_restoring_to", None)
        if restoring is not None:
            return [restoring]
        return list(super()._lookup(exchange, routing_key, default))

    def _do_restore_message(self, payload: dict[str, Any], exchange: str, routing_key: str, pipe: Any,
                            leftmost: bool = False) -> None:
        self._restoring_to = payload.get("properties", {}).get(QUEUE_PROPERTY)
        try:
            super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)
        finally:
            self._restoring_to = None


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


def install() -> None:
    kombu.transport.TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
    kombu.transport._transport_cache.pop("redis", None)
