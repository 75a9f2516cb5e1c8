"""Trace context in the logs and on the HTTP API, and the OTLP exporter that is off unless switched on."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from flask import jsonify
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from werkplaats_shared.http import create_app
from werkplaats_shared.logs import JsonFormatter
from werkplaats_shared.tracing import make_provider, span_from, trace_id_of

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_TRACEPARENT = f"00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("intake"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    logger = logging.getLogger("test_tracing")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_log_lines_carry_the_trace_id_inside_a_span_and_not_outside(lines: list[dict[str, Any]]) -> None:
    log = logging.getLogger("test_tracing")
    log.info("before")
    with span_from("intake", "work", SpanKind.INTERNAL, None) as span:
        log.info("inside", extra={"batch_id": "b1"})
        context = span.get_span_context()
    log.info("after")
    before, inside, after = lines
    assert "trace_id" not in before and "span_id" not in before
    assert inside["trace_id"] == trace.format_trace_id(context.trace_id)
    assert inside["span_id"] == trace.format_span_id(context.span_id)
    assert inside["batch_id"] == "b1" and inside["service"] == "intake"
    assert "trace_id" not in after and "span_id" not in after


def test_a_span_continues_the_trace_in_a_message_header_and_starts_one_without(lines: list[dict[str, Any]]) -> None:
    log = logging.getLogger("test_tracing")
    with span_from("matching", "consume", SpanKind.CONSUMER, {"traceparent": CALLER_TRACEPARENT}):
        log.info("continued")
    with span_from("matching", "consume", SpanKind.CONSUMER, {"traceparent": "not a traceparent"}):
        log.info("new")
    continued, new = lines
    assert continued["trace_id"] == CALLER_TRACE_ID
    assert new["trace_id"] != CALLER_TRACE_ID and len(new["trace_id"]) == 32


def test_a_request_is_a_span_that_continues_the_callers_trace_and_answers_with_its_trace_id(
        lines: list[dict[str, Any]]) -> None:
    app, _api = create_app("Werkplaats Tracetest")

    @app.get("/work")
    def work() -> ResponseReturnValue:
        logging.getLogger("test_tracing").info("working")
        return jsonify(ok=True)

    client = app.test_client()
    continued = client.get("/work", headers={"traceparent": CALLER_TRACEPARENT})
    first, second = client.get("/work"), client.get("/work")
    assert trace_id_of(continued.headers.get("traceresponse")) == CALLER_TRACE_ID
    new_ids = [trace_id_of(r.headers.get("traceresponse")) for r in (first, second)]
    assert None not in new_ids and CALLER_TRACE_ID not in new_ids and new_ids[0] != new_ids[1]
    assert [line["trace_id"] for line in lines] == [CALLER_TRACE_ID, *new_ids]
    assert trace.get_current_span().get_span_context().is_valid is False  # nothing left active after a request


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _one_span(service: str) -> bytes:
    provider = make_provider(service)
    span = provider.get_tracer("test").start_span("work")
    span.end()
    assert provider.force_flush(5000)
    provider.shutdown()
    return span.get_span_context().trace_id.to_bytes(16, "big")


def test_spans_go_to_the_otlp_collector_only_when_its_endpoint_is_set(
        collector: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    _one_span("intake")
    assert Collector.received == []  # off by default: nothing sent

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    trace_id = _one_span("intake")
    ((path, body),) = Collector.received
    assert path == "/v1/traces"
    assert trace_id in body and b"werkplaats-intake" in body  # the span, with its service's name
