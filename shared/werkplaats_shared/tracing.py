"""Traces across the queue: W3C trace context (OpenTelemetry) from an HTTP request through the outbox row and the
message headers into the consumer, and on to what the consumer makes (its own outbox rows, scheduling's notices).

- Every HTTP request is a span (``http.install_tracing``); a request that brings a ``traceparent`` header
  continues that trace, any other starts a new one.
- ``add_to_outbox`` stores the current ``traceparent`` with the row; the relay puts it in the message's
  headers; the consumer handles the message in a span whose parent is that context.
- Every JSON log line written inside a span carries its ``trace_id`` and ``span_id`` (logs.py).
- Spans are exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
  set: then over OTLP/HTTP to that collector. Without it no span leaves the process (no network at all).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
EXPORT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracers: dict[str, trace.Tracer] = {}


def configure_tracing(service: str) -> TracerProvider:
    """The process's tracer provider, made once (the first service to ask names it). With an OTLP endpoint in
    the environment its spans are exported in batches; without one they are only kept in memory while open."""
    global _provider
    with _lock:
        if _provider is None:
            _provider = make_provider(service)
        return _provider


def make_provider(service: str) -> TracerProvider:
    """A tracer provider for ``service``; its spans go to the OTLP/HTTP collector named by the standard
    environment variables, or nowhere when none is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"werkplaats-{service}"}))
    endpoint = next((os.environ[name] for name in EXPORT_ENV if os.environ.get(name)), None)
    if endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("traces exported over OTLP", extra={"endpoint": endpoint})
    return provider


def tracer(service: str) -> trace.Tracer:
    """The service's tracer, made once (every request and every message starts a span with it)."""
    found = _tracers.get(service)
    if found is None:
        found = _tracers[service] = configure_tracing(service).get_tracer(f"werkplaats.{service}")
    return found


def current_traceparent() -> str | None:
    """The current span's W3C ``traceparent`` header value, or None outside a span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), or None outside a span."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a ``traceparent`` value, or None when there is none (or it is not valid)."""
    if not traceparent:
        return None
    context = trace.get_current_span(_propagator.extract({TRACEPARENT: traceparent})).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def start_span(service: str, name: str, kind: SpanKind, carrier: Mapping[str, Any] | None) -> Span:
    """A new span, child of the trace context in ``carrier`` (HTTP or message headers) if it has a valid one."""
    headers = {TRACEPARENT: str(carrier[TRACEPARENT])} if carrier and carrier.get(TRACEPARENT) else {}
    return tracer(service).start_span(name, context=_propagator.extract(headers), kind=kind)


def activate(span: Span) -> Token[Context]:
    """Make ``span`` the current one; returns the token for ``deactivate``."""
    return otel_context.attach(trace.set_span_in_context(span))


def deactivate(token: Token[Context]) -> None:
    otel_context.detach(token)


@contextmanager
def span_from(service: str, name: str, kind: SpanKind, carrier: Mapping[str, Any] | None) -> Iterator[Span]:
    """Run the block in a new current span, child of the context in ``carrier``."""
    span = start_span(service, name, kind, carrier)
    token = activate(span)
    try:
        yield span
    finally:
        deactivate(token)
        span.end()
