"""What tracing costs: send and delivery rates with tracing off and on.

Three configurations, the same work each (N events sent with ``send_many``,
then a worker delivers them to a local receiver, SQLite):

- ``off``: ``WEBHOOKS_OTEL`` unset, the default; nothing of OpenTelemetry loads;
- ``on, no-op``: tracing on, spans made by the OpenTelemetry SDK and handed
  to the batch processor ``webhooks worker`` sets up
  (:func:`producer.tracing.build_tracer_provider`), whose exporter drops
  them: the cost of tracing itself, without any network;
- ``off`` again: the spread between the two ``off`` runs is the noise of the
  machine, the yardstick for "costs nothing measurable".

Each configuration runs ``--rounds`` times, interleaved; the medians are
printed: the rates, and the CPU time this process spent per event sending
it and delivering it (the worker runs here, the receiver in a process of
its own). On a machine busy with other work the CPU time is the steadier
figure: waiting for a core does not count in it. The last line compares
each round's ``on`` with the mean of the two ``off`` runs around it and
gives the median of those ratios, so a load that drifts between rounds
does not count as the cost of tracing.

Run: ``python benchmarks/tracing.py [--events 5000] [--rounds 3]``.
Needs the ``otel`` extra. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from throughput import LOCAL, ReceiverProcess, drain, fill

from producer import Producer
from producer.tracing import Tracing, build_tracer_provider


class DroppingExporter(SpanExporter):
    """Takes every span and does nothing with it."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


Result = tuple[float, float, float, float, int]
"""Events sent per second, deliveries per second, CPU µs per event sending it
and delivering it, spans exported."""


def run(url: str, db_dir: str, name: str, events: int, traced: bool) -> Result:
    """Send ``events`` and deliver them, with or without tracing."""
    producer = Producer(
        f"sqlite:///{db_dir}/{name}.db", auto_migrate=True, allowed_cidrs=LOCAL, otel=traced
    )
    exporter = DroppingExporter()
    provider = build_tracer_provider([exporter] if traced else [])
    if traced:
        producer.context.tracing = Tracing(provider)
    producer.create_endpoint(url)
    cpu = time.process_time()
    started = time.perf_counter()
    fill(producer, events)
    send_rate = events / (time.perf_counter() - started)
    send_cpu = time.process_time()
    delivery_rate = asyncio.run(drain(producer, events))
    provider.shutdown()  # exports what the batch processor still holds
    done = time.process_time()
    producer.close()
    per_event = 1e6 / events
    return (
        send_rate,
        delivery_rate,
        (send_cpu - cpu) * per_event,
        (done - send_cpu) * per_event,
        exporter.spans,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    receiver = ReceiverProcess()
    db_dir = tempfile.mkdtemp(prefix="webhooks-bench-tracing-")
    configurations = [("off", False), ("on, no-op", True), ("off again", False)]
    results: dict[str, list[Result]] = {c: [] for c, _ in configurations}
    try:
        run(receiver.url, db_dir, "warm-up", min(args.events, 1000), False)
        for round_ in range(args.rounds):
            for label, traced in configurations:
                name = f"{label.replace(' ', '-').replace(',', '')}-{round_}"
                results[label].append(run(receiver.url, db_dir, name, args.events, traced))
    finally:
        receiver.close()

    print(f"{args.events} events, 1 endpoint, SQLite; medians of {args.rounds} rounds")
    header = ("tracing", "send events/s", "deliveries/s", "send CPU µs", "deliver CPU µs", "spans")
    print("{:<12} {:>14} {:>14} {:>12} {:>15} {:>7}".format(*header))
    for label, rows in results.items():
        send, deliver, send_cpu, deliver_cpu = (
            statistics.median(r[i] for r in rows) for i in range(4)
        )
        print(
            f"{label:<12} {send:14.0f} {deliver:14.0f} {send_cpu:12.0f} {deliver_cpu:15.0f}"
            f" {rows[-1][4]:7d}"
        )
    figures = ("send rate", "delivery rate", "send CPU", "delivery CPU")
    on = [
        [r[i] / ((a[i] + b[i]) / 2) - 1 for i in range(4)]
        for r, a, b in zip(results["on, no-op"], results["off"], results["off again"], strict=True)
    ]
    noise = [
        [abs(a[i] - b[i]) / ((a[i] + b[i]) / 2) for i in range(4)]
        for a, b in zip(results["off"], results["off again"], strict=True)
    ]
    print("tracing on vs off (median of the rounds' ratios; off and off again differ by):")
    for i, figure in enumerate(figures):
        change = statistics.median(r[i] for r in on)
        spread = statistics.median(r[i] for r in noise)
        print(f"  {figure:<14} {change:+7.1%}   ({spread:.1%})")


if __name__ == "__main__":
    main()
