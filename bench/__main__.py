"""`make bench` / `python -m bench`: the referral pipeline on a private Kafka and FerretDB, measured.

Starts its own Kafka, FerretDB, mail sink, intake, routing and notifications, measures, stops them.

Phases, in this order, on the same broker:
1. baseline: a raw aiokafka relay (bench.relay) copies N records from topic A to topic B;
2. baseline: a minimal hand-written stage (bench.minimal_stage): consume, one upsert per record, produce;
3. baseline: the minimal batched stage (bench.minimal_stage --batched): consume, one insert_many per
   batch, produce;
4. warm-up: a few cases through the pipeline, not counted (connections, consumer groups, caches);
5. saturated: `--cases` cases posted by `--concurrency` clients as fast as they are answered → cases/s;
6. fixed rate: cases posted open loop at `--rate` per second (100 by default, the target's rate) →
   latency, and whether the pipeline kept up with that rate;
7. replay: a second routing in a new consumer group re-reads every CaseReceived of the run against the
   same database until its lag is 0 (bench.replay) → events/s.
A case is through when its CaseRouted is consumed and notifications has recorded its notifications (the
cases are referred by a partner account made at start, bench.partner: its own topic says so).
At the end every case is checked against the CaseRouted topic, the partner's topic and the notifications
store (lost, duplicated). Results go to `--out` (bench/results/latest.json) and are printed as a table.
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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import pyspy, report, service_metrics, store_timing
from bench.baseline import run_baseline
from bench.check import check_cases
from bench.partner import add_partner
from bench.pipeline import Phase, Pipeline
from bench.replay import run_replay
from bench.resources import ResourceSampler, cpu_percent
from bench.waiting import BenchError, reporting
from ops.devstack import ROOT, StartupError
from ops.stack import SERVICES, Stack, StackConfig
from shared.settings import ServiceSettings

BENCHED = ("intake", "routing", "notifications")
TARGET_RATE = 100.0  # cases/s at which the latency target is set


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases", type=int, default=20000, help="cases in the saturated phase (default 20000; fewer for a quick look)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="HTTP clients posting in parallel in the saturated phase (default 32)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_RATE,
        help=f"cases/s of the open-loop latency phase (default {TARGET_RATE:.0f}, the target's "
        "rate; lower it to see the latency of a rate the pipeline sustains: the results "
        "say whether it kept up)",
    )
    parser.add_argument(
        "--latency-cases",
        type=int,
        default=None,
        help="cases in the latency phase (default: 30 s worth at the rate, at least 50, at most half of --cases)",
    )
    parser.add_argument("--warmup", type=int, default=100, help="uncounted cases first (default 100)")
    parser.add_argument(
        "--baseline-msgs", type=int, default=20000, help="records through the raw relay (default 20000)"
    )
    parser.add_argument(
        "--minimal-msgs", type=int, default=10000, help="records through the minimal stage baseline (default 10000)"
    )
    parser.add_argument(
        "--minimal-batched-msgs",
        type=int,
        default=20000,
        help="records through the minimal batched stage baseline (default 20000)",
    )
    parser.add_argument(
        "--no-replay",
        dest="replay",
        action="store_false",
        help="skip the replay phase (a new routing consumer group re-reading every CaseReceived)",
    )
    parser.add_argument(
        "--baseline-bytes",
        type=int,
        default=900,
        help="size of a baseline record; default about a CaseReceived envelope (900)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=300,
        help="give up waiting for a phase's CaseRouted after this many seconds without a new one (default 300)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument(
        "--py-spy",
        type=float,
        default=0,
        metavar="SECONDS",
        help="sample the services with py-spy for SECONDS from the start of the saturated phase",
    )
    parser.add_argument(
        "--no-store-profile",
        dest="store_profile",
        action="store_false",
        help="do not time the services' store commands (bench/profiling)",
    )
    args = parser.parse_args(argv)
    for name in ("cases", "concurrency", "baseline_msgs", "minimal_msgs", "minimal_batched_msgs", "baseline_bytes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def routed_deadline_s(cases: int) -> float:
    """An outer bound only (a stuck pipeline is detected sooner, by --stall-timeout)."""
    return 600 + 5 * cases


@dataclass
class Probes:
    """What is read around each phase: CPU, the services' own timers, their store commands."""

    resources: ResourceSampler
    service_urls: dict[str, str]
    profile_dir: Path
    service_pids: dict[str, int]


async def run_phase(
    pipeline: Pipeline, phase: Phase, post: Callable[[Phase], Awaitable[None]], probes: Probes, stall_s: float
) -> Phase:
    """Post the phase's cases with `post`, wait until they are through; note CPU and service timers."""
    resources, service_urls = probes.resources, probes.service_urls
    cpu_before = resources.cpu_snapshot()
    timers_before = await service_metrics.scrape(pipeline.client, service_urls)
    store_before = store_timing.snapshot(probes.profile_dir, probes.service_pids)
    async with reporting(
        lambda: (
            f"{phase.name}: {len(phase.sent)}/{phase.planned} accepted, "
            f"{pipeline.routed_count(phase)} routed, {pipeline.notified_count(phase)} notified"
        )
    ):
        await post(phase)
    print(
        f"  {phase.name}: {len(phase.sent)}/{phase.planned} accepted by intake"
        f"{f', {phase.http_errors} failed' if phase.http_errors else ''}; waiting for CaseRouted and the "
        f"notifications …",
        flush=True,
    )
    await pipeline.wait_routed(phase, routed_deadline_s(phase.planned), stall_s)
    phase.cpu_percent = cpu_percent(cpu_before, resources.cpu_snapshot())
    phase.service_ms = service_metrics.mean_ms_between(
        timers_before, await service_metrics.scrape(pipeline.client, service_urls)
    )
    await asyncio.sleep(2.5)  # the store sums are written every 2 s: let the phase's last ones land
    phase.store_profile = store_timing.top(store_before, store_timing.snapshot(probes.profile_dir, probes.service_pids))
    return phase


async def measure(
    stack: Stack, args: argparse.Namespace, resources: ResourceSampler, profile_dir: Path
) -> dict[str, Any]:
    """Run the phases and the check; return what `report.build_result` needs besides memory peaks."""
    kafka = stack.kafka.access()  # the bench's own clients and baselines run as the admin principal
    machine = report.machine()
    steps = 7 if args.replay else 6
    print(f"[1/{steps}] baseline: raw aiokafka relay, {args.baseline_msgs} records", flush=True)
    partitions = ServiceSettings.model_fields["topic_partitions"].default  # as the services' topics
    baseline = await run_baseline(
        kafka, args.baseline_msgs, args.baseline_bytes, partitions, resources, deadline_s=300 + args.baseline_msgs / 100
    )
    print(f"  {baseline.msgs_per_s:,.0f} msgs/s end to end", flush=True)
    print(
        f"[2/{steps}] baseline: minimal stage (consume, one upsert per record, produce), {args.minimal_msgs} records",
        flush=True,
    )
    minimal = await run_baseline(
        kafka,
        args.minimal_msgs,
        args.baseline_bytes,
        partitions,
        resources,
        deadline_s=300 + args.minimal_msgs / 20,
        mongo_url=stack.ferretdb.url,
    )
    print(f"  {minimal.msgs_per_s:,.0f} msgs/s end to end", flush=True)
    print(
        f"[3/{steps}] baseline: minimal batched stage (consume, one insert_many per batch, produce), "
        f"{args.minimal_batched_msgs} records",
        flush=True,
    )
    batched = await run_baseline(
        kafka,
        args.minimal_batched_msgs,
        args.baseline_bytes,
        partitions,
        resources,
        deadline_s=300 + args.minimal_batched_msgs / 20,
        mongo_url=stack.ferretdb.url,
        batched=True,
    )
    print(f"  {batched.msgs_per_s:,.0f} msgs/s end to end", flush=True)

    urls = {name: stack.services[name].url for name in BENCHED}
    probes = Probes(resources, urls, profile_dir, {name: stack.services[name].pid for name in BENCHED})
    partner = await add_partner(stack)  # as `relais partners add`: Kafka user, topic, ACLs and HTTP token
    pipeline = Pipeline(urls["intake"], kafka, partner, max_connections=max(args.concurrency, 100))
    await pipeline.start()
    try:
        print(f"[4/{steps}] warm-up: {args.warmup} cases, not counted", flush=True)
        warmup = await run_phase(
            pipeline,
            Phase("warm-up", args.warmup, concurrency=min(args.concurrency, 8)),
            pipeline.closed_loop,
            probes,
            args.stall_timeout,
        )
        if not warmup.routed_complete:
            raise BenchError("the warm-up cases were not all through: see the service logs")

        print(f"[5/{steps}] saturated: {args.cases} cases, {args.concurrency} concurrent clients", flush=True)
        spy_dir = profile_dir / "py-spy"
        spies = await pyspy.start(probes.service_pids, args.py_spy, spy_dir) if args.py_spy > 0 else []
        saturated = await run_phase(
            pipeline,
            Phase("saturated", args.cases, concurrency=args.concurrency),
            pipeline.closed_loop,
            probes,
            args.stall_timeout,
        )
        await pyspy.finish(spies, timeout_s=args.py_spy + 30)
        saturated.py_spy = pyspy.summary(spy_dir, BENCHED) if spies else {}
        sat = report.phase_numbers(saturated, pipeline.routed.arrivals, pipeline.through_at(saturated))
        print(f"  {report.fmt(sat['cases_per_s'])} cases/s, p50 {sat['p50_ms']} ms", flush=True)

        rate = args.rate
        latency_cases = args.latency_cases or min(max(50, int(rate * 30)), max(50, args.cases // 2))
        print(f"[6/{steps}] latency: {latency_cases} cases open loop at {rate:g} cases/s", flush=True)
        fixed = await run_phase(
            pipeline, Phase("fixed-rate", latency_cases, rate=rate), pipeline.open_loop, probes, args.stall_timeout
        )
        lat = report.phase_numbers(fixed, pipeline.routed.arrivals, pipeline.through_at(fixed))
        print(
            f"  posted at {report.fmt(lat['posted_per_s'])}/s, routed at {report.fmt(lat['routed_per_s'])}/s"
            f"{'' if lat['rate_sustained'] else ' (rate NOT sustained)'}; p99 {lat['p99_ms']} ms",
            flush=True,
        )
        emails = await service_metrics.emails(pipeline.client, urls["notifications"])
        replay = None
        if args.replay:
            print(f"[7/{steps}] replay: routing in a new consumer group re-reads every CaseReceived", flush=True)
            replay = await run_replay(
                stack,
                pipeline.routed,
                port=free_port(),
                tag=uuid.uuid4().hex[:8],
                extra_env=stack.config.extra_env,
                resources=resources,
                profile_dir=profile_dir,
                stall_s=args.stall_timeout,
                deadline_s=routed_deadline_s(warmup.planned + saturated.planned + fixed.planned),
            )
            print(
                f"  {report.fmt(replay.events_per_s)} events/s ({replay.events} events, lag 0 "
                f"{'reached' if replay.lag_zero else 'NOT reached'}, {replay.new_case_routed_ids} new CaseRouted)",
                flush=True,
            )
        print(
            "check: every case against the CaseRouted topic, the partner's topic and the notifications store …",
            flush=True,
        )
        checked = await check_cases(pipeline, (warmup, saturated, fixed), stack.ferretdb.url)
        print(
            f"  cases {checked['cases_total']}, lost {checked['lost']}, duplicated {checked['duplicated']}", flush=True
        )
        return {
            "saturated": saturated,
            "fixed": fixed,
            "warmup": warmup,
            "arrivals": dict(pipeline.routed.arrivals),
            "through": {**pipeline.through_at(saturated), **pipeline.through_at(fixed)},
            "notified": {**pipeline.notified_at(saturated), **pipeline.notified_at(fixed)},
            "baseline": baseline,
            "minimal": minimal,
            "batched": batched,
            "replay": replay,
            "checked": checked,
            "emails": emails,
            "machine_info": machine,
        }
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
    profile_dir = data_dir / "store-profile"
    profile_dir.mkdir()
    stack = Stack(
        StackConfig(
            data_dir=data_dir,
            kafka_port=free_port(),
            controller_port=free_port(),
            mongo_port=free_port(),
            smtp_port=free_port(),
            service_ports={name: free_port() for name in SERVICES},
            # The load comes from one address and one partner: intake's limits are off for the measurement.
            extra_env={
                "RELAIS_INTAKE_SUBMISSIONS_PER_MINUTE": "0",
                "RELAIS_INTAKE_PARTNER_SUBMISSIONS_PER_MINUTE": "0",
                **(store_timing.env(profile_dir) if args.store_profile else {}),
            },
        )
    )
    resources = ResourceSampler(group=BENCHED)
    resources.track("bench", os.getpid(), tree=False)
    failed = True
    try:
        print(f"bench: starting FerretDB and Kafka ({data_dir}) …", flush=True)
        stack.start_infra()
        for broker in stack.kafka.brokers:
            resources.track(broker.name, broker.pid)
        resources.track("ferretdb", stack.ferretdb.pid)
        resources.track("mailsink", stack.mailsink.pid)
        print(f"bench: starting {' and '.join(BENCHED)} …", flush=True)
        stack.start_services(BENCHED)
        for name in BENCHED:
            resources.track(name, stack.services[name].pid)
        resources.start()
        measured = asyncio.run(measure(stack, args, resources, profile_dir))
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
