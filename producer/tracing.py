"""OpenTelemetry traces of sends, attempts and the worker's batches.

Built only when ``WEBHOOKS_OTEL`` is on: otherwise a context holds no
:class:`Tracing`, every caller skips its spans with one ``None`` check, and
nothing of ``opentelemetry`` is imported. Spans go to the tracer provider
the host configured (``opentelemetry.trace.set_tracer_provider``), or the one
:func:`configure_tracer_provider` builds from the ``OTEL_*`` variables for
``webhooks serve`` and ``webhooks worker``.

A message carries the W3C trace context of its ``send`` span (stored with the
message, so also for a send in the caller's transaction), and each attempt's
span is its child, whichever process makes the attempt later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "FORWARDED_HEADERS",
    "INSTRUMENTATION_NAME",
    "CurrentSpan",
    "Tracing",
    "batch_span",
    "build_tracer_provider",
    "configure_tracer_provider",
    "configured_exporters",
    "instrument_app",
]

INSTRUMENTATION_NAME = "webhook-producer"
FORWARDED_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context headers an endpoint with ``forward_traceparent`` gets."""


class CurrentSpan:
    """A started span, made the current one for a ``with`` block and ended
    after it; an exception escaping the block is recorded on it.

    What ``start_as_current_span`` does, in one small object: a span per
    attempt is on the worker's hot path, where three nested generator-based
    context managers cost more than the context switch itself.
    """

    __slots__ = ("_span", "_token", "_tracing")

    def __init__(self, tracing: Tracing, span: Span) -> None:
        self._tracing = tracing
        self._span = span

    def __enter__(self) -> Span:
        tracing = self._tracing
        self._token = tracing._attach(tracing._trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        span, trace = self._span, self._tracing._trace
        self._tracing._detach(self._token)
        # As ``use_span`` does: a BaseException that is no error (a cancelled
        # task, GeneratorExit) ends the span without marking it failed.
        if isinstance(exc, Exception) and span.is_recording():
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


class Tracing:
    """Makes the spans of one producer."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        """Spans go to ``tracer_provider``, or to the global one (looked up
        at each span, so a provider the host sets later is used)."""
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._attach = context.attach
        self._detach = context.detach
        # The W3C format itself, whatever propagators the host set globally:
        # it is what a message stores and what receivers are sent.
        self._propagate = TraceContextTextMapPropagator()
        # The deliveries of one message (its fan-out, claimed together) share
        # its stored context: parsed once, not at each attempt. A small cache:
        # each message brings a context of its own, and entries kept for a
        # thousand attempts outlive the garbage collector's young generations
        # and churn its oldest one (two A/B runs in the rotation of
        # ``benchmarks/tracing.py``: tracing added 10-13 % to a delivery's CPU
        # with 1,024 entries, 3-4 % with 64).
        self._parent_context = lru_cache(maxsize=64)(self._extract)
        self.tracer_provider = tracer_provider
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)

    def span(self, name: str, attributes: Mapping[str, Any]) -> CurrentSpan:
        """A span under the current one, itself the current span inside the
        block; an exception escaping the block is recorded on it."""
        # The SDK copies the attributes: the caller's mapping is not kept.
        return CurrentSpan(self, self._tracer.start_span(name, attributes=attributes))

    def _parent(self, parent: Mapping[str, str] | None) -> Context | None:
        """The context a stored ``traceparent`` (and ``tracestate``) names."""
        # A stored context that is not a mapping (written around the library)
        # starts a trace of its own rather than failing the attempt.
        if not isinstance(parent, Mapping):
            return None
        traceparent, tracestate = parent.get("traceparent"), parent.get("tracestate")
        if not isinstance(traceparent, str):
            return None
        return self._parent_context(
            traceparent, tracestate if isinstance(tracestate, str) else None
        )

    def _extract(self, traceparent: str, tracestate: str | None) -> Context:
        found = _TRACEPARENT.fullmatch(traceparent)
        if found is None or tracestate is not None:
            # The propagator's own rules for everything but the plain
            # version-00 header this library writes.
            carrier = {"traceparent": traceparent}
            if tracestate is not None:
                carrier["tracestate"] = tracestate
            return self._propagate.extract(carrier)
        trace_id, span_id, flags = (int(part, 16) for part in found.groups())
        if not trace_id or not span_id:
            return self._propagate.extract({})
        trace = self._trace
        context = trace.SpanContext(trace_id, span_id, True, trace.TraceFlags(flags))
        return trace.set_span_in_context(trace.NonRecordingSpan(context))

    def carrier(self, span: Span) -> dict[str, str]:
        """The W3C trace context of ``span``, to store or forward: the
        ``traceparent`` (and ``tracestate``) headers as the W3C propagator
        writes them; nothing for an invalid context."""
        context = span.get_span_context()
        if not context.is_valid:
            return {}
        carrier = {
            "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}"
            f"-{context.trace_flags:02x}"
        }
        if context.trace_state:
            carrier["tracestate"] = context.trace_state.to_header()
        return carrier

    def send_span(self, event_type: str, tenant: str | None) -> CurrentSpan:
        """The span of one send (its deliveries are added once known)."""
        return self.span(
            "webhooks.send",
            {"webhooks.event_type": event_type, "webhooks.tenant": tenant or ""},
        )

    def start_attempt(
        self, *, parent: Mapping[str, str] | None, url: str, attributes: dict[str, Any]
    ) -> Span:
        """The span of one attempt, a child of its message's ``send`` span,
        started now for an attempt whose receiver gets its trace context
        (:meth:`carrier` with the span); end it with :meth:`end_attempt`.

        Not made the current span: an attempt runs no code of the host's that
        could add spans under it.
        """
        return self._attempt_span(parent, url, attributes, None)

    def end_attempt(
        self, span: Span, *, outcome: str, status_code: int | None, error: str | None
    ) -> None:
        """Record what came of an attempt on its span, and end it."""
        if span.is_recording():  # else sampled out: nothing would keep these
            span.set_attributes(_outcome(outcome, status_code, error))
            self._judge(span, outcome, error)
        span.end()

    def record_attempt(
        self,
        *,
        parent: Mapping[str, str] | None,
        url: str,
        attributes: dict[str, Any],
        start_time: int,
        outcome: str,
        status_code: int | None,
        error: str | None,
    ) -> None:
        """The span of one attempt that began at ``start_time`` (ns since the
        epoch) and just ended, made in one go: what :meth:`start_attempt` and
        :meth:`end_attempt` make, for the many attempts whose trace context
        travels nowhere."""
        attributes.update(_outcome(outcome, status_code, error))
        span = self._attempt_span(parent, url, attributes, start_time)
        if span.is_recording():
            self._judge(span, outcome, error)
        span.end()

    def _attempt_span(
        self,
        parent: Mapping[str, str] | None,
        url: str,
        attributes: dict[str, Any],
        start_time: int | None,
    ) -> Span:
        attributes["server.address"] = _host(url)
        return self._tracer.start_span(
            "webhooks.attempt",
            context=self._parent(parent),
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_time,
        )

    def _judge(self, span: Span, outcome: str, error: str | None) -> None:
        """An attempt that did not succeed is an error span."""
        if outcome != "succeeded":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error or outcome))


def _outcome(outcome: str, status_code: int | None, error: str | None) -> dict[str, str | int]:
    """The attributes of what came of an attempt."""
    attributes: dict[str, str | int] = {"webhooks.outcome": outcome}
    if status_code:
        attributes["http.response.status_code"] = status_code
    if error:
        attributes["error.type"] = error.partition(":")[0]
        attributes["webhooks.error"] = error
    return attributes


_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
"""A ``traceparent`` header of version 00, as this library writes them."""


@lru_cache(maxsize=1024)
def _host(url: str) -> str:
    """The host of an endpoint URL (the few URLs of a worker's endpoints are
    split once each, not at every attempt)."""
    return urlsplit(url).hostname or ""


def batch_span(
    tracing: Tracing | None, name: str, attributes: Mapping[str, Any]
) -> AbstractContextManager[Span | None]:
    """A span of one worker batch (claim, record), or nothing without tracing."""
    if tracing is None:
        return nullcontext()
    return tracing.span(name, attributes)


def configured_exporters(variable: str, group: str) -> list[Any]:
    """The exporters the variable ``variable`` names (``otlp`` when unset),
    built from the entry points of ``group``, as the OpenTelemetry SDK does:
    ``otlp`` (needs ``opentelemetry-exporter-otlp``), ``console``, ``none``,
    or any other installed exporter, comma-separated. Raises ``RuntimeError``
    naming what to install for an exporter that is not installed."""
    import os
    from importlib.metadata import entry_points

    exporters = []
    for name in (n.strip() for n in os.environ.get(variable, "otlp").split(",")):
        if name in ("", "none"):
            continue
        found = entry_points(group=group, name=name)
        if not found:
            hint = " (pip install opentelemetry-exporter-otlp)" if name == "otlp" else ""
            raise RuntimeError(f"{variable} names {name!r}, which is not installed{hint}")
        exporters.append(next(iter(found)).load()())
    return exporters


def build_tracer_provider(exporters: list[SpanExporter]) -> TracerProvider:
    """A tracer provider whose spans go to each of ``exporters`` in batches,
    its resource from ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``:
    what :func:`configure_tracer_provider` sets up, without making it global."""
    _require_sdk()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracer_provider() -> TracerProvider:
    """Set the global tracer provider from the standard ``OTEL_*`` variables
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_EXPORTER``
    and each exporter's own), for the processes ``webhooks`` runs.

    Spans are exported in batches; what is left is exported when the process
    exits. Raises ``RuntimeError`` with what to install when something is missing.
    """
    _require_sdk()
    from opentelemetry import trace

    provider = build_tracer_provider(
        configured_exporters("OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter")
    )
    trace.set_tracer_provider(provider)
    return provider


def _require_sdk() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401 (only whether it is installed)
    except ImportError:
        raise RuntimeError(
            "WEBHOOKS_OTEL needs the OpenTelemetry SDK: pip install 'webhook-producer[otel]'"
        ) from None


def instrument_app(app: Any, tracing: Tracing | None) -> None:
    """Trace the API's requests (FastAPI instrumentation), when tracing is on
    and ``opentelemetry-instrumentation-fastapi`` is installed."""
    if tracing is None:
        return
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        return
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.tracer_provider)
