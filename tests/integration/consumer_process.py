"""A consumer in its own process, for the kill-after-commit fault test. Configured by the same
environment variables as a service; appends the id of each message it has applied (or
recognised as applied) and acknowledged to acked.log."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kombu.message import Message
from werkplaats_shared import broker
from werkplaats_shared.config import Settings
from werkplaats_shared.consumer import MessageConsumer
from werkplaats_shared.db import make_engine, make_session_factory

from tests.integration.harness import inbox, metadata, record_effect


class RecordingConsumer(MessageConsumer):
    def acknowledged(self, queue_name: str, message: Message) -> None:
        with open(ACKED, "a", encoding="utf-8") as fh:
            fh.write(f"{message.properties.get('message_id')}\n")


settings = Settings.from_env("matching")
ACKED = Path(settings.database_url.removeprefix("sqlite:///")).with_name("acked.log")
engine = make_engine(settings.database_url)
metadata.create_all(engine)
with broker.connect(settings) as conn:
    consumer = RecordingConsumer(connection=conn, topology=broker.topology_for(settings), service="matching",
                                 session_factory=make_session_factory(engine), inbox=inbox,
                                 handlers={"batch.submitted": record_effect})
    signal.signal(signal.SIGTERM, lambda *_: setattr(consumer, "should_stop", True))
    consumer.run()
os._exit(0)
