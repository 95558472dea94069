"""From raw timestamps to the numbers: percentiles, the JSON written to bench/results, the printed table."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baseline import BaselineResult
from bench.pipeline import Phase
from bench.resources import ResourceSampler
from ops.devstack import ROOT


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100); None without values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def phase_numbers(phase: Phase, arrivals: dict[bytes, float]) -> dict[str, Any]:
    """Throughput from the first POST to the last CaseRouted of the phase; latency per routed case."""
    latencies_ms = sorted((arrivals[k] - t) * 1000 for k, t in phase.sent.items() if k in arrivals)
    routed_at = [arrivals[k] for k in phase.sent if k in arrivals]
    span = (max(routed_at) - phase.first_post) if routed_at else 0.0
    routed_at.sort()
    fifths = [routed_at[len(routed_at) * i // 5:len(routed_at) * (i + 1) // 5] for i in range(5)]
    # Cases/s in each fifth of the phase, from the previous fifth's last CaseRouted: shows any slow-down.
    by_fifth, previous = [], phase.first_post
    for chunk in fifths:
        if chunk:
            by_fifth.append(round(len(chunk) / (chunk[-1] - previous), 1) if chunk[-1] > previous else None)
            previous = chunk[-1]
    http_span = phase.last_response - phase.first_post
    http_ms = sorted(phase.http_ms)
    return {
        "cases": phase.planned,
        "accepted": len(phase.sent),
        "routed": len(latencies_ms),
        "http_errors": phase.http_errors,
        "http_error_samples": phase.error_samples,
        "seconds": round(span, 3),
        "cases_per_s": round(len(routed_at) / span, 1) if span > 0 else None,
        "cases_per_s_by_fifth": by_fifth,
        "http_accepted_per_s": round(len(phase.sent) / http_span, 1) if http_span > 0 else None,
        "p50_ms": _ms(percentile(latencies_ms, 50)),
        "p95_ms": _ms(percentile(latencies_ms, 95)),
        "p99_ms": _ms(percentile(latencies_ms, 99)),
        "max_ms": _ms(latencies_ms[-1] if latencies_ms else None),
        "http_post_p50_ms": _ms(percentile(http_ms, 50)),
        "http_post_p99_ms": _ms(percentile(http_ms, 99)),
        "service_mean_ms": phase.service_ms,
        "cpu_percent_by_process": phase.cpu_percent,
        **({"concurrency": phase.concurrency} if phase.concurrency else {}),
        **({"rate_per_s": phase.rate, "schedule_lag_max_ms": _ms(phase.schedule_lag_max_s * 1000)}
           if phase.rate else {}),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def machine() -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    changed = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": commit,
        "git_uncommitted_changes": bool(changed),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_result(*, saturated: Phase, fixed: Phase, warmup: Phase, arrivals: dict[bytes, float],
                 baseline: BaselineResult, resources: ResourceSampler, services: tuple[str, ...],
                 machine_info: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    sat = phase_numbers(saturated, arrivals)
    lat = phase_numbers(fixed, arrivals)
    per_process = {name: round(mb, 1) for name, mb in resources.max_mb.items()}
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline_cases_per_s": sat["cases_per_s"],
        "baseline_relay_msgs_per_s": round(baseline.msgs_per_s, 1),
        "p50_ms": lat["p50_ms"],
        "p95_ms": lat["p95_ms"],
        "p99_ms": lat["p99_ms"],
        "rss_mb_max": max((per_process[s] for s in services if s in per_process), default=None),
        "cases_total": warmup.planned + saturated.planned + fixed.planned,
        "latency_rate_per_s": fixed.rate,
        "saturated_p50_ms": sat["p50_ms"],
        "saturated_p95_ms": sat["p95_ms"],
        "saturated_p99_ms": sat["p99_ms"],
        "complete": saturated.routed_complete and fixed.routed_complete and baseline.received == baseline.messages,
        "phases": {"saturated": sat, "fixed_rate": lat},
        "baseline": {
            "messages": baseline.messages, "relayed": baseline.received, "message_bytes": baseline.message_bytes,
            "seconds": round(baseline.seconds, 3), "msgs_per_s": round(baseline.msgs_per_s, 1),
            "produce_only_msgs_per_s": round(baseline.produce_msgs_per_s, 1),
            "cpu_percent_by_process": baseline.cpu_percent,
        },
        "rss_mb_max_by_process": per_process,
        "rss_mb_max_services_total": round(resources.max_group_total_mb, 1),
        "warmup_cases": warmup.planned,
        "options": options,
        "machine": machine_info,
    }


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def table(result: dict[str, Any]) -> str:
    sat, lat, base = result["phases"]["saturated"], result["phases"]["fixed_rate"], result["baseline"]
    m = result["machine"]
    ratio = (result["pipeline_cases_per_s"] / result["baseline_relay_msgs_per_s"] * 100
             if result["pipeline_cases_per_s"] and result["baseline_relay_msgs_per_s"] else None)
    rss = result["rss_mb_max_by_process"]

    def trio(d: dict[str, Any]) -> str:
        return " / ".join(fmt(d[k]) for k in ("p50_ms", "p95_ms", "p99_ms")) + " ms"

    rows = [
        ("Pipeline POST /cases → CaseRouted consumed", ""),
        (f"  throughput, saturated ({sat['concurrency']} clients, {sat['routed']} cases)",
         f"{fmt(sat['cases_per_s'])} cases/s"),
        ("  throughput by fifth of the saturated phase", " / ".join(fmt(v) for v in sat["cases_per_s_by_fifth"])),
        ("  HTTP accepted by intake, saturated", f"{fmt(sat['http_accepted_per_s'])} req/s"),
        ("  latency p50 / p95 / p99, saturated", trio(sat)),
        (f"  latency p50 / p95 / p99 at {fmt(lat.get('rate_per_s'))} cases/s open loop ({lat['routed']} cases)",
         trio(lat)),
        ("  latency max at that rate", f"{fmt(lat['max_ms'])} ms"),
        ("Where the time goes, saturated / fixed rate", ""),
        ("  POST /cases answered by intake, p50", _pair(sat, lat, "http_post_p50_ms")),
        *[(f"  {label}, mean", _pair(sat, lat, key, "service_mean_ms")) for key, label in SERVICE_TIMERS.items()],
        ("Baseline raw aiokafka relay A → B, same broker", ""),
        (f"  throughput ({base['relayed']} msgs of {base['message_bytes']} B)", f"{fmt(base['msgs_per_s'])} msgs/s"),
        ("  producer alone (into A)", f"{fmt(base['produce_only_msgs_per_s'])} msgs/s"),
        ("  pipeline / baseline", f"{ratio:.1f} %" if ratio is not None else "-"),
        ("Peak RSS (process + children)", ""),
        *[(f"  {name}", f"{mb:.0f} MB") for name, mb in rss.items()],
        ("  services together", f"{result['rss_mb_max_services_total']:.0f} MB"),
        ("CPU, % of one core: baseline / saturated / fixed rate", ""),
        *[(f"  {name}", " / ".join(fmt(phase["cpu_percent_by_process"].get(name)) for phase in (base, sat, lat)))
          for name in sat["cpu_percent_by_process"]],
    ]
    width = max(len(label) for label, _ in rows) + 2
    value_width = max(len(value) for _, value in rows)
    lines = [f"Relais benchmark {result['timestamp']} — {m['cpu_count']} CPUs, Python {m['python']}, "
             f"load at start {m['load_average_at_start'][0]}, commit {m['git_commit']}"
             f"{' + uncommitted changes' if m['git_uncommitted_changes'] else ''}",
             f"load average at the end {m.get('load_average_at_end', ['-'])[0]}",
             "-" * (width + value_width)]
    lines += [f"{label:<{width}}{value:>{value_width}}" if value else label for label, value in rows]
    if not result["complete"]:
        lines.append("! incomplete: some cases or messages did not arrive before the deadline")
    errors = sat["http_errors"] + lat["http_errors"]
    if errors:
        lines.append(f"! {errors} POSTs failed, e.g. {', '.join(sat['http_error_samples'] + lat['http_error_samples'])}")
    return "\n".join(lines)


SERVICE_TIMERS = {
    "intake.outbox_relay_ms": "intake: CaseReceived waiting in the outbox",
    "routing.handler_ms": "routing: consumer handler call (a batch of records)",
    "routing.outbox_relay_ms": "routing: CaseRouted waiting in the outbox",
}


def _pair(sat: dict[str, Any], lat: dict[str, Any], key: str, within: str | None = None) -> str:
    values = [(d.get(within) or {}) if within else d for d in (sat, lat)]
    return " / ".join(fmt(v.get(key)) for v in values) + " ms"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}".replace(",", " ")
    return str(value)


if __name__ == "__main__":  # print the table of a results file again
    print(table(json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "bench/results/latest.json")
                           .read_text())))
