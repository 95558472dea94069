"""`make bench` / `python -m bench`: start a private Kafka, FerretDB, intake and routing, measure, stop.

Phases, in this order, on the same broker:
1. baseline: a raw aiokafka relay (bench.relay) copies N records from topic A to topic B;
2. warm-up: a few cases through the pipeline, not counted (connections, consumer groups, caches);
3. saturated: `--cases` cases posted by `--concurrency` clients as fast as they are answered → cases/s;
4. fixed rate: cases posted open loop at `--rate` per second → latency that is not queueing.
Results go to `--out` (bench/results/latest.json) and are printed as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import report, service_metrics
from bench.baseline import run_baseline
from bench.pipeline import Phase, Pipeline
from bench.resources import ResourceSampler, cpu_percent
from bench.waiting import BenchError, reporting
from ops.devstack import ROOT, StartupError
from ops.stack import SERVICES, Stack, StackConfig
from shared.settings import ServiceSettings

BENCHED = ("intake", "routing")
MAX_AUTO_RATE = 100.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases in the saturated phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="HTTP clients posting in parallel in the saturated phase (default 32)")
    parser.add_argument("--rate", type=float, default=None,
                        help="cases/s of the open-loop latency phase (default: half the throughput "
                             f"at the end of the saturated phase, at most {MAX_AUTO_RATE:.0f})")
    parser.add_argument("--latency-cases", type=int, default=None,
                        help="cases in the latency phase (default: 30 s worth at the rate, at least 50, "
                             "at most half of --cases)")
    parser.add_argument("--warmup", type=int, default=100, help="uncounted cases first (default 100)")
    parser.add_argument("--baseline-msgs", type=int, default=20000,
                        help="records through the raw relay (default 20000)")
    parser.add_argument("--baseline-bytes", type=int, default=900,
                        help="size of a baseline record; default about a CaseReceived envelope (900)")
    parser.add_argument("--stall-timeout", type=float, default=300,
                        help="give up waiting for a phase's CaseRouted after this many seconds without a new "
                             "one (default 300)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary folder (logs, data)")
    args = parser.parse_args(argv)
    for name in ("cases", "concurrency", "baseline_msgs", "baseline_bytes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def routed_deadline_s(cases: int) -> float:
    """An outer bound only (a stuck pipeline is detected sooner, by --stall-timeout)."""
    return 600 + 5 * cases


def auto_rate(saturated: dict[str, Any]) -> float:
    """Half the sustained capacity: the lower of the whole phase and its last fifth (it may decline as
    the store grows), so that the latency phase does not build a queue."""
    rates = [v for v in (saturated["cases_per_s"], *saturated["cases_per_s_by_fifth"][-1:]) if v] or [1.0]
    return min(MAX_AUTO_RATE, max(0.1, round(min(rates) / 2, 1)))


async def run_phase(pipeline: Pipeline, phase: Phase, post: Callable[[Phase], Awaitable[None]],
                    resources: ResourceSampler, service_urls: dict[str, str], stall_s: float) -> Phase:
    """Post the phase's cases with `post`, wait for their CaseRouted; note CPU and service timers."""
    cpu_before = resources.cpu_snapshot()
    timers_before = await service_metrics.scrape(pipeline.client, service_urls)
    async with reporting(lambda: f"{phase.name}: {len(phase.sent)}/{phase.planned} accepted, "
                                 f"{pipeline.routed_count(phase)} routed"):
        await post(phase)
    print(f"  {phase.name}: {len(phase.sent)}/{phase.planned} accepted by intake"
          f"{f', {phase.http_errors} failed' if phase.http_errors else ''}; waiting for CaseRouted …", flush=True)
    await pipeline.wait_routed(phase, routed_deadline_s(phase.planned), stall_s)
    phase.cpu_percent = cpu_percent(cpu_before, resources.cpu_snapshot())
    phase.service_ms = service_metrics.mean_ms_between(
        timers_before, await service_metrics.scrape(pipeline.client, service_urls))
    return phase


async def measure(stack: Stack, args: argparse.Namespace, resources: ResourceSampler) -> dict[str, Any]:
    """Run the four phases; return what `report.build_result` needs besides the memory peaks."""
    bootstrap = stack.kafka.bootstrap
    machine = report.machine()
    print(f"[1/4] baseline: raw aiokafka relay, {args.baseline_msgs} records", flush=True)
    partitions = ServiceSettings.model_fields["topic_partitions"].default  # as the services' topics
    baseline = await run_baseline(bootstrap, args.baseline_msgs, args.baseline_bytes, partitions, resources,
                                  deadline_s=300 + args.baseline_msgs / 100)
    print(f"  {baseline.msgs_per_s:,.0f} msgs/s end to end", flush=True)

    urls = {name: stack.services[name].url for name in BENCHED}
    pipeline = Pipeline(urls["intake"], bootstrap,
                        max_connections=max(args.concurrency, 100))
    await pipeline.start()
    try:
        print(f"[2/4] warm-up: {args.warmup} cases, not counted", flush=True)
        warmup = await run_phase(pipeline, Phase("warm-up", args.warmup, concurrency=min(args.concurrency, 8)),
                                 pipeline.closed_loop, resources, urls, args.stall_timeout)
        if not warmup.routed_complete:
            raise BenchError("the warm-up cases were not all routed: see the service logs")

        print(f"[3/4] saturated: {args.cases} cases, {args.concurrency} concurrent clients", flush=True)
        saturated = await run_phase(pipeline, Phase("saturated", args.cases, concurrency=args.concurrency),
                                    pipeline.closed_loop, resources, urls, args.stall_timeout)
        sat = report.phase_numbers(saturated, pipeline.routed.arrivals)
        print(f"  {report.fmt(sat['cases_per_s'])} cases/s, p50 {sat['p50_ms']} ms", flush=True)

        rate = args.rate or auto_rate(sat)
        latency_cases = args.latency_cases or min(max(50, int(rate * 30)), max(50, args.cases // 2))
        print(f"[4/4] latency: {latency_cases} cases open loop at {rate:g} cases/s", flush=True)
        fixed = await run_phase(pipeline, Phase("fixed-rate", latency_cases, rate=rate),
                                pipeline.open_loop, resources, urls, args.stall_timeout)
        return {"saturated": saturated, "fixed": fixed, "warmup": warmup,
                "arrivals": dict(pipeline.routed.arrivals), "baseline": baseline, "machine_info": machine}
    finally:
        await pipeline.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupt(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    data_dir = Path(tempfile.mkdtemp(prefix="relais-bench-"))
    stack = Stack(StackConfig(data_dir=data_dir, kafka_port=free_port(), controller_port=free_port(),
                              mongo_port=free_port(), smtp_port=free_port(), service_ports={name: free_port() for name in SERVICES}))
    resources = ResourceSampler(group=BENCHED)
    resources.track("bench", os.getpid(), tree=False)
    failed = True
    try:
        print(f"bench: starting FerretDB and Kafka ({data_dir}) …", flush=True)
        stack.start_infra()
        resources.track("kafka", stack.kafka.proc.pid)
        resources.track("ferretdb", stack.ferretdb.proc.pid)
        print(f"bench: starting {' and '.join(BENCHED)} …", flush=True)
        stack.start_services(BENCHED)
        for name in BENCHED:
            resources.track(name, stack.services[name].proc.pid)
        resources.start()
        measured = asyncio.run(measure(stack, args, resources))
        load_at_end = [round(x, 2) for x in os.getloadavg()]
        failed = False
    except KeyboardInterrupt:
        print("\nbench: interrupted", flush=True)
        failed = False  # nothing to investigate: the data folder goes unless --keep-data
        return 130
    except (StartupError, BenchError) as exc:
        print(f"bench: failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # Stop first: printing can fail too (a closed pipe), and must not leave processes behind;
        # a second Ctrl-C must not cut the shutdown short either.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            resources.stop()
        finally:
            stack.stop()
        print("bench: services, Kafka and FerretDB stopped", flush=True)
        if failed or args.keep_data:
            print(f"bench: logs and data kept in {data_dir}", flush=True)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = report.build_result(**measured, resources=resources, services=BENCHED, options=options)
    result["machine"]["load_average_at_end"] = load_at_end
    report.write(result, args.out)
    print()
    print(report.table(result))
    print(f"\nbench: results written to {args.out}", flush=True)
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
