"""What tracing costs: CPU per event sent and delivered, tracing off and on.

Three producers, each in a process of its own with a SQLite database of its
own and one endpoint on a local receiver (a process of its own too):

- ``off``: no tracing, the default (``WEBHOOKS_OTEL`` unset: one ``None``
  check per send and per attempt);
- ``on``: tracing on, spans made by the OpenTelemetry SDK and handed
  to the batch processor ``webhooks worker`` sets up
  (:func:`producer.tracing.build_tracer_provider`), whose exporter drops
  them: the cost of tracing itself, without any network. With
  ``--exporter none`` the provider has no span processor at all (what
  ``OTEL_TRACES_EXPORTER=none`` gives the service): spans are made and
  dropped as they end, none is held for a batch;
- ``off again``: a second untraced producer. The spread between the two
  ``off`` figures is the noise of the machine, the yardstick for "costs
  nothing measurable".

Each round sends a block of ``--events`` events through each producer and
delivers them with a worker, the producers taking turns in a rotating order,
so a slow spell of the machine falls on all three alike; the producers'
processes share one core, the receiver has the other. The figures are the
CPU time of the producer's process (worker, batch processor, garbage
collector and all) per event: waiting for a core does not count in it.

Printed: the medians per configuration, then each round's ``on`` against the
mean of that round's two ``off`` blocks (the median of those ratios), and the
direct cost of the spans of one event (a send span and an attempt span, timed
alone) as a share of the CPU an untraced event takes.

With ``--instructions N``, instead: the instructions the producer's process
executes per event, counted by valgrind's callgrind (``apt install
valgrind``), untraced and traced. Each configuration runs twice under it,
with a warm-up of 100 events and then with ``N`` more; the difference over
``N`` leaves out start-up, imports and migrations. An instruction count does
not change with the machine's speed or with what else runs, so it settles
what the CPU figures' noise cannot; what it leaves out is the cost of memory
(caches), which the CPU figures include. Under valgrind everything runs
about 40 times slower: ``--instructions 600`` takes about 4 minutes.

Run: ``python benchmarks/tracing.py [--events 1000] [--rounds 12]
[--exporter no-op|none] [--instructions N]``.
Needs the ``otel`` extra. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from throughput import LOCAL, ReceiverProcess, drain, fill

from producer import Producer
from producer.service import settle_heap
from producer.tracing import Tracing, build_tracer_provider

CONFIGURATIONS = ("off", "on", "off again")


class DroppingExporter(SpanExporter):
    """Takes every span and does nothing with it."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


class FullCollections:
    """Counts the collections of the oldest generation."""

    def __init__(self) -> None:
        self.count = 0
        gc.callbacks.append(self._seen)

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            self.count += 1


Block = tuple[float, float, int]
"""CPU µs per event sending it and delivering it; full collections."""


def pin(cpu: int, pid: int = 0) -> None:
    """Keep a process on one core (the producers on the first, the receiver
    on the second, where there are two), so no configuration is favoured by
    where the scheduler happens to put it."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(pid, {sorted(os.sched_getaffinity(0))[cpu]})


def configured(
    traced: bool, batched: bool, database: str, url: str
) -> tuple[Producer, Tracing | None, DroppingExporter]:
    """A producer with one endpoint at ``url``, traced or not, ready as
    ``webhooks worker`` is once it has started."""
    producer = Producer(database, auto_migrate=True, allowed_cidrs=LOCAL, otel=traced)
    exporter = DroppingExporter()
    tracing = None
    if traced:
        tracing = Tracing(build_tracer_provider([exporter] if batched else []))
    producer.context.tracing = tracing
    producer.create_endpoint(url)
    settle_heap()  # as ``webhooks worker`` does once it is ready
    return producer, tracing, exporter


def send_and_deliver(producer: Producer, tracing: Tracing | None, events: int) -> None:
    """Send ``events`` events, deliver them with a worker, export their spans."""
    fill(producer, events)
    asyncio.run(drain(producer, events))
    if tracing is not None:
        tracing.tracer_provider.force_flush()  # the export is part of the cost


WARM_UP = 100
"""Events sent and delivered first in each counted run."""


def counted_run(traced: bool, batched: bool, events: int, url: str) -> None:
    """What each run under callgrind does (``--count-run``): the warm-up,
    then ``events`` more, then nothing else that depends on ``events``."""
    with tempfile.TemporaryDirectory(prefix="webhooks-bench-tracing-") as db_dir:
        producer, tracing, _ = configured(traced, batched, f"sqlite:///{db_dir}/w.db", url)
        send_and_deliver(producer, tracing, WARM_UP)
        if events:
            send_and_deliver(producer, tracing, events)
        if tracing is not None:
            tracing.tracer_provider.shutdown()
        producer.close()


def instructions(traced: bool, batched: bool, events: int, url: str) -> int:
    """Instructions the process of one counted run executes, by callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--count-run",
        "on" if traced else "off",
        "batched" if batched else "bare",
        str(events),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count_instructions(events: int, batched: bool, exporter: str) -> None:
    """Instructions per event, untraced and traced, each configuration's
    runs side by side on the two cores."""
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt install valgrind)")
    receiver = ReceiverProcess()
    try:
        per_event = {}
        for traced in (False, True):
            with ThreadPoolExecutor(2) as pool:
                short, long = pool.map(
                    lambda n, t=traced: instructions(t, batched, n, receiver.url), (0, events)
                )
            per_event[traced] = (long - short) / events
    finally:
        receiver.close()
    off, on = per_event[False], per_event[True]
    print(
        f"instructions per event sent and delivered (callgrind, {events} events after"
        f" {WARM_UP}, 1 endpoint, SQLite; on: {exporter} exporter):"
    )
    print(f"  off {off:,.0f}   on {on:,.0f}   tracing on vs off {on / off - 1:+.1%}")


def serve(traced: bool, batched: bool, database: str, url: str, orders: Connection) -> None:
    """One configuration's process: runs a block for each number of events
    it is sent and answers what it cost; ``None`` ends it (answered with the
    number of spans exported, and with the spans of one event timed alone)."""
    pin(0)
    producer, tracing, exporter = configured(traced, batched, database, url)
    gcs = FullCollections()
    while (events := orders.recv()) is not None:
        collections = gcs.count
        started = time.process_time()
        fill(producer, events)
        sent = time.process_time()
        asyncio.run(drain(producer, events))
        if tracing is not None:
            tracing.tracer_provider.force_flush()  # the export is part of the cost
        done = time.process_time()
        per_event = 1e6 / events
        cost = ((sent - started) * per_event, (done - sent) * per_event, gcs.count - collections)
        orders.send(cost)
    exported = exporter.spans  # the blocks' spans, not those timed alone below
    direct = span_cost(tracing) if tracing is not None else 0.0
    if tracing is not None:
        tracing.tracer_provider.shutdown()
    producer.close()
    orders.send((exported, direct))


def span_cost(tracing: Tracing) -> float:
    """µs for the spans of one event, timed alone: its send span (made
    current, its trace context taken) and one attempt span."""

    def one_event() -> None:
        with tracing.send_span("invoice.paid", "default") as span:
            parent = tracing.carrier(span)
            span.set_attributes({"webhooks.message_id": "msg_1", "webhooks.deliveries": 1})
        attempt = tracing.start_attempt(
            parent=parent,
            url="http://127.0.0.1/hooks",
            attributes={
                "webhooks.endpoint_id": "ep_1",
                "webhooks.delivery_id": "dlv_1",
                "webhooks.message_id": "msg_1",
                "webhooks.attempt": 1,
                "webhooks.trigger": "scheduled",
            },
        )
        tracing.end_attempt(attempt, outcome="succeeded", status_code=200, error=None)

    runs = timeit.repeat(one_event, number=2000, repeat=7)
    return statistics.median(runs) / 2000 * 1e6


def main() -> None:
    if sys.argv[1:2] == ["--count-run"]:
        traced, batched, events, url = sys.argv[2:6]
        counted_run(traced == "on", batched == "batched", int(events), url)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000, help="events per block")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument(
        "--exporter",
        choices=("no-op", "none"),
        default="no-op",
        help="no-op: a dropping exporter behind the batch processor; none: no processor",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="count instructions per event over N events under callgrind instead",
    )
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args.instructions, args.exporter == "no-op", args.exporter)
        return

    receiver = ReceiverProcess()
    pin(1, receiver.proc.pid)
    db_dir = tempfile.mkdtemp(prefix="webhooks-bench-tracing-")
    spawn = multiprocessing.get_context("spawn")
    runners: dict[str, Connection] = {}
    results: dict[str, list[Block]] = {label: [] for label in CONFIGURATIONS}
    processes = []
    try:
        for number, label in enumerate(CONFIGURATIONS):
            ours, theirs = spawn.Pipe()
            database = f"sqlite:///{db_dir}/{number}.db"
            traced = label.startswith("on")
            batched = args.exporter == "no-op"
            process = spawn.Process(
                target=serve, args=(traced, batched, database, receiver.url, theirs)
            )
            process.start()
            processes.append(process)
            runners[label] = ours
        for orders in runners.values():  # warm-up
            orders.send(min(args.events, 500))
            orders.recv()
        for round_ in range(args.rounds):
            shift = round_ % len(CONFIGURATIONS)
            for label in CONFIGURATIONS[shift:] + CONFIGURATIONS[:shift]:
                runners[label].send(args.events)
                results[label].append(runners[label].recv())
        ends = {}
        for label, orders in runners.items():
            orders.send(None)
            ends[label] = orders.recv()
    finally:
        for process in processes:
            process.join(30)
        receiver.close()
    spans, direct = ends["on"]
    traced_events = min(args.events, 500) + args.rounds * args.events

    print(
        f"{args.events} events a block, {args.rounds} rounds, 1 endpoint, SQLite;"
        f" on: {args.exporter} exporter, {spans} spans exported,"
        f" {spans / traced_events:.2f} an event"
    )
    header = ("tracing", "send CPU µs", "deliver CPU µs", "total µs", "full GCs")
    print("{:<12} {:>12} {:>15} {:>9} {:>9}".format(*header))
    medians = {}
    for label, rows in results.items():
        send, deliver = (statistics.median(r[i] for r in rows) for i in (0, 1))
        total = statistics.median(r[0] + r[1] for r in rows)
        medians[label] = total
        print(f"{label:<12} {send:12.0f} {deliver:15.0f} {total:9.0f} {sum(r[2] for r in rows):9d}")
    print("tracing on vs off (median of the rounds' ratios; off and off again differ by):")
    for name, pick in (
        ("send", lambda r: r[0]),
        ("delivery", lambda r: r[1]),
        ("send+delivery", lambda r: r[0] + r[1]),
    ):
        off, on, again = ([pick(r) for r in results[label]] for label in CONFIGURATIONS)
        change = statistics.median(
            o / ((a + b) / 2) - 1 for o, a, b in zip(on, off, again, strict=True)
        )
        spread = statistics.median(
            abs(a - b) / ((a + b) / 2) for a, b in zip(off, again, strict=True)
        )
        print(f"  {name:<14} {change:+7.1%}   ({spread:.1%})")
    untraced = (medians["off"] + medians["off again"]) / 2
    print(
        f"spans of one event timed alone: {direct:.1f} µs,"
        f" {direct / untraced:.1%} of an untraced event's {untraced:.0f} µs"
    )


if __name__ == "__main__":
    main()
