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
from bench.replay import ReplayResult
from bench.resources import ResourceSampler
from ops.devstack import ROOT


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100); None without values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def phase_numbers(
    phase: Phase, arrivals: dict[bytes, float], through: dict[bytes, float], notified: dict[bytes, float] | None = None
) -> dict[str, Any]:
    """Throughput from the first POST to the last case through (routed and notified); latency from the POST
    to the CaseRouted (the target's definition) and to the notifications recorded."""
    latencies_ms = sorted((arrivals[k] - t) * 1000 for k, t in phase.sent.items() if k in arrivals)
    notified = notified or {}
    notified_ms = sorted((notified[k] - t) * 1000 for k, t in phase.sent.items() if k in notified)
    done_at = [through[k] for k in phase.sent if k in through]
    span = (max(done_at) - phase.first_post) if done_at else 0.0
    done_at.sort()
    fifths = [done_at[len(done_at) * i // 5 : len(done_at) * (i + 1) // 5] for i in range(5)]
    # Cases/s in each fifth of the phase, from the previous fifth's last case through: shows any slow-down.
    by_fifth, previous = [], phase.first_post
    for chunk in fifths:
        if chunk:
            by_fifth.append(round(len(chunk) / (chunk[-1] - previous), 1) if chunk[-1] > previous else None)
            previous = chunk[-1]
    http_span = phase.last_response - phase.first_post
    http_ms = sorted(phase.http_ms)
    posted_per_s = _span_rate(sorted(phase.sent.values()))
    routed_per_s = _span_rate(sorted(arrivals[k] for k in phase.sent if k in arrivals))
    return {
        "cases": phase.planned,
        "accepted": len(phase.sent),
        "routed": len(latencies_ms),
        "notified": len(notified_ms),
        "through": len(done_at),
        "http_errors": phase.http_errors,
        "http_error_samples": phase.error_samples,
        "seconds": round(span, 3),
        "cases_per_s": round(len(done_at) / span, 1) if span > 0 else None,
        "cases_per_s_by_fifth": by_fifth,
        "http_accepted_per_s": round(len(phase.sent) / http_span, 1) if http_span > 0 else None,
        "p50_ms": _ms(percentile(latencies_ms, 50)),
        "p95_ms": _ms(percentile(latencies_ms, 95)),
        "p99_ms": _ms(percentile(latencies_ms, 99)),
        "max_ms": _ms(latencies_ms[-1] if latencies_ms else None),
        "notified_p50_ms": _ms(percentile(notified_ms, 50)),
        "notified_p99_ms": _ms(percentile(notified_ms, 99)),
        "http_post_p50_ms": _ms(percentile(http_ms, 50)),
        "http_post_p99_ms": _ms(percentile(http_ms, 99)),
        "service_mean_ms": phase.service_ms,
        "store_profile": phase.store_profile,
        **({"py_spy": phase.py_spy} if phase.py_spy else {}),
        "cpu_percent_by_process": phase.cpu_percent,
        **({"concurrency": phase.concurrency} if phase.concurrency else {}),
        **(
            {
                "rate_per_s": phase.rate,
                "schedule_lag_max_ms": _ms(phase.schedule_lag_max_s * 1000),
                "posted_per_s": posted_per_s,
                "routed_per_s": routed_per_s,
                "rate_sustained": sustained(phase.rate, posted_per_s, routed_per_s),
            }
            if phase.rate
            else {}
        ),
    }


# An open-loop phase kept up with its rate when its POSTs started and its CaseRouted arrived at least this
# close to the rate (arrival times are taken per fetched batch, so a short phase reads a little low).
SUSTAINED_SHARE = 0.9


def sustained(rate: float, posted_per_s: float | None, routed_per_s: float | None) -> bool:
    return all(v is not None and v >= SUSTAINED_SHARE * rate for v in (posted_per_s, routed_per_s))


def _span_rate(times: list[float]) -> float | None:
    """Events per second between the first and the last of sorted `times`."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 1)


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


# The targets on the 2-core machine (reported against, never asserted).
TARGETS = {"cases_per_s": 1000, "p99_ms_at_100_per_s": 250, "rss_mb_per_service": 150}


def _baseline(b: BaselineResult) -> dict[str, Any]:
    return {
        "messages": b.messages,
        "relayed": b.received,
        "message_bytes": b.message_bytes,
        "seconds": round(b.seconds, 3),
        "msgs_per_s": round(b.msgs_per_s, 1),
        "produce_only_msgs_per_s": round(b.produce_msgs_per_s, 1),
        "cpu_percent_by_process": b.cpu_percent,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a and b else None


def build_result(
    *,
    saturated: Phase,
    fixed: Phase,
    warmup: Phase,
    arrivals: dict[bytes, float],
    through: dict[bytes, float],
    notified: dict[bytes, float],
    baseline: BaselineResult,
    minimal: BaselineResult,
    batched: BaselineResult,
    replay: ReplayResult | None,
    checked: dict[str, Any],
    emails: dict[str, float],
    resources: ResourceSampler,
    services: tuple[str, ...],
    machine_info: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    sat = phase_numbers(saturated, arrivals, through, notified)
    lat = phase_numbers(fixed, arrivals, through, notified)
    per_process = {name: round(mb, 1) for name, mb in resources.max_mb.items()}
    rss_services = {s: per_process[s] for s in services if s in per_process}
    relay_per_s, minimal_per_s = round(baseline.msgs_per_s, 1), round(minimal.msgs_per_s, 1)
    batched_per_s = round(batched.msgs_per_s, 1)
    replay_per_s = replay.events_per_s if replay is not None else None
    complete = (
        saturated.routed_complete
        and fixed.routed_complete
        and all(b.received == b.messages for b in (baseline, minimal, batched))
        and (replay is None or replay.lag_zero)
    )
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline_cases_per_s": sat["cases_per_s"],
        "baseline_relay_msgs_per_s": relay_per_s,
        "baseline_minimal_stage_per_s": minimal_per_s,
        "baseline_minimal_batched_per_s": batched_per_s,
        "ratio_pipeline_to_relay": _ratio(sat["cases_per_s"], relay_per_s),
        "ratio_pipeline_to_minimal_stage": _ratio(sat["cases_per_s"], minimal_per_s),
        "ratio_pipeline_to_minimal_batched": _ratio(sat["cases_per_s"], batched_per_s),
        "replay_events_per_s": round(replay_per_s, 1) if replay_per_s else None,
        "p50_ms": lat["p50_ms"],
        "p95_ms": lat["p95_ms"],
        "p99_ms": lat["p99_ms"],
        "rss_mb_max": max(rss_services.values(), default=None),
        "rss_mb_max_by_service": rss_services,
        "cases_total": checked["cases_total"],
        "lost": checked["lost"],
        "duplicated": checked["duplicated"],
        "targets": {
            **TARGETS,
            "met": {
                "cases_per_s": bool(sat["cases_per_s"] and sat["cases_per_s"] >= TARGETS["cases_per_s"]),
                "p99_ms_at_100_per_s": bool(
                    lat["p99_ms"] is not None
                    and lat["p99_ms"] < TARGETS["p99_ms_at_100_per_s"]
                    and (fixed.rate or 0) >= 100
                    and lat["rate_sustained"]
                ),
                "rss_mb_per_service": bool(rss_services) and max(rss_services.values()) < TARGETS["rss_mb_per_service"],
            },
        },
        "latency_rate_per_s": fixed.rate,
        "latency_posted_per_s": lat["posted_per_s"],
        "latency_routed_per_s": lat["routed_per_s"],
        "latency_rate_sustained": lat["rate_sustained"],
        "saturated_p50_ms": sat["p50_ms"],
        "saturated_p95_ms": sat["p95_ms"],
        "saturated_p99_ms": sat["p99_ms"],
        "complete": complete,
        "check": checked,
        "emails_at_end": emails,
        "phases": {"saturated": sat, "fixed_rate": lat},
        "baseline": _baseline(baseline),
        "baseline_minimal_stage": _baseline(minimal),
        "baseline_minimal_batched_stage": _baseline(batched),
        "replay": replay.as_dict() if replay is not None else None,
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
    mini, check = result["baseline_minimal_stage"], result["check"]
    batch, replay = result.get("baseline_minimal_batched_stage"), result.get("replay")
    m = result["machine"]
    rss = result["rss_mb_max_by_process"]

    def trio(d: dict[str, Any]) -> str:
        return " / ".join(fmt(d[k]) for k in ("p50_ms", "p95_ms", "p99_ms")) + " ms"

    rows = [
        ("Pipeline POST /cases → CaseRouted consumed and notifications recorded", ""),
        (
            f"  throughput, saturated ({sat['concurrency']} clients, {sat['through']} cases)",
            f"{fmt(sat['cases_per_s'])} cases/s",
        ),
        ("  throughput by fifth of the saturated phase", " / ".join(fmt(v) for v in sat["cases_per_s_by_fifth"])),
        ("  HTTP accepted by intake, saturated", f"{fmt(sat['http_accepted_per_s'])} req/s"),
        ("  latency p50 / p95 / p99, saturated", trio(sat)),
        (
            f"  latency p50 / p95 / p99 at {fmt(lat.get('rate_per_s'))} cases/s open loop ({lat['routed']} cases)",
            trio(lat),
        ),
        ("  latency max at that rate", f"{fmt(lat['max_ms'])} ms"),
        *(
            [
                (
                    "  at that rate: POSTs started / CaseRouted arrived per s",
                    (
                        f"{fmt(lat['posted_per_s'])} / {fmt(lat['routed_per_s'])}"
                        f"{'' if lat['rate_sustained'] else ' (NOT sustained)'}"
                    ),
                )
            ]
            if "rate_sustained" in lat
            else []
        ),
        (
            "  POST → notifications recorded p50 / p99, saturated / fixed rate",
            f"{fmt(sat['notified_p50_ms'])} / {fmt(sat['notified_p99_ms'])} · "
            f"{fmt(lat['notified_p50_ms'])} / {fmt(lat['notified_p99_ms'])} ms",
        ),
        (
            "  cases posted / lost / duplicated (checked: topics and store)",
            f"{result['cases_total']} / {result['lost']} / {result['duplicated']}",
        ),
        ("  notifications stored / expected", f"{check['notifications_stored']} / {check['notifications_expected']}"),
        ("  emails sent by the end", fmt(result["emails_at_end"].get("sent"))),
        ("Where the time goes, saturated / fixed rate", ""),
        ("  POST /cases answered by intake, p50", _pair(sat, lat, "http_post_p50_ms")),
        *[(f"  {label}, mean", _pair(sat, lat, key, "service_mean_ms")) for key, label in SERVICE_TIMERS.items()],
        ("Baselines, same broker and store", ""),
        (
            f"  raw aiokafka relay A → B ({base['relayed']} msgs of {base['message_bytes']} B)",
            f"{fmt(base['msgs_per_s'])} msgs/s",
        ),
        ("  producer alone (into A)", f"{fmt(base['produce_only_msgs_per_s'])} msgs/s"),
        (
            f"  minimal stage: consume, one upsert, produce ({mini['relayed']} msgs)",
            f"{fmt(mini['msgs_per_s'])} msgs/s",
        ),
        *(
            [
                (
                    f"  minimal batched stage: consume, one insert_many per batch, produce ({batch['relayed']} msgs)",
                    f"{fmt(batch['msgs_per_s'])} msgs/s",
                )
            ]
            if batch
            else []
        ),
        ("  pipeline / raw relay", _percent(result["ratio_pipeline_to_relay"])),
        ("  pipeline / minimal stage (what our plumbing costs)", _percent(result["ratio_pipeline_to_minimal_stage"])),
        *(
            [
                (
                    "  pipeline / minimal batched stage (what a few writes per batch allow)",
                    _percent(result["ratio_pipeline_to_minimal_batched"]),
                )
            ]
            if batch
            else []
        ),
        *_replay_rows(replay),
        ("Peak RSS (process + children)", ""),
        *[(f"  {name}", f"{mb:.0f} MB") for name, mb in rss.items()],
        ("  services together", f"{result['rss_mb_max_services_total']:.0f} MB"),
        (
            (
                f"CPU, % of one core: relay / minimal stage / {'minimal batched / ' if batch else ''}saturated / "
                f"fixed rate{' / replay' if replay else ''}"
            ),
            "",
        ),
        *[
            (
                f"  {name}",
                " / ".join(
                    fmt(phase["cpu_percent_by_process"].get(name))
                    for phase in (base, mini, batch, sat, lat, replay)
                    if phase
                ),
            )
            for name in {**sat["cpu_percent_by_process"], **((replay or {}).get("cpu_percent_by_process") or {})}
        ],
        ("Store commands by time, saturated (bench/profiling)", ""),
        *_store_rows(sat.get("store_profile") or {}),
        *_spy_rows(sat.get("py_spy") or {}),
        ("Targets (issue 6): met?", ""),
        *[
            (f"  {name} {'≥' if name == 'cases_per_s' else '<'} {result['targets'][name]}", "yes" if met else "no")
            for name, met in result["targets"]["met"].items()
        ],
    ]
    width = max(len(label) for label, _ in rows) + 2
    value_width = max(len(value) for _, value in rows)
    lines = [
        f"Relais benchmark {result['timestamp']} — {m['cpu_count']} CPUs, Python {m['python']}, "
        f"load at start {m['load_average_at_start'][0]}, commit {m['git_commit']}"
        f"{' + uncommitted changes' if m['git_uncommitted_changes'] else ''}",
        f"load average at the end {m.get('load_average_at_end', ['-'])[0]}",
        "-" * (width + value_width),
    ]
    lines += [f"{label:<{width}}{value:>{value_width}}" if value else label for label, value in rows]
    if not result["complete"]:
        lines.append("! incomplete: some cases or messages did not arrive before the deadline")
    if result["lost"] or result["duplicated"]:
        lines.append(f"! check: {json.dumps(check)}")
    errors = sat["http_errors"] + lat["http_errors"]
    if errors:
        lines.append(
            f"! {errors} POSTs failed, e.g. {', '.join(sat['http_error_samples'] + lat['http_error_samples'])}"
        )
    return "\n".join(lines)


SERVICE_TIMERS = {
    "intake.outbox_relay_ms": "intake: CaseReceived waiting in the outbox",
    "routing.handler_ms": "routing: consumer handler call (a batch of records)",
    "routing.outbox_relay_ms": "routing: CaseRouted waiting in the outbox",
    "notifications.handler_ms": "notifications: consumer handler call (a batch)",
    "notifications.outbox_relay_ms": "notifications: partner status record waiting in the outbox",
}


def _replay_rows(replay: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not replay:
        return []
    rows = [
        ("Replay: routing in a new consumer group re-reads every CaseReceived (same database)", ""),
        (f"  {replay['events']} events until lag 0", f"{fmt(replay['events_per_s'])} events/s"),
        (
            "  from the process start to lag 0 / to its first commit",
            f"{fmt(replay['seconds_from_start'])} / {fmt(replay['first_commit_after_s'])} s",
        ),
        (
            "  CaseRouted records published meanwhile / new CaseRouted ids (0 expected)",
            f"{replay['case_routed_records']} / {replay['new_case_routed_ids']}",
        ),
    ]
    if not replay["lag_zero"]:
        rows.append(("  ! lag 0 not reached", ""))
    return rows + _store_rows(replay.get("store_profile") or {})


def _store_rows(profile: dict[str, Any], per_service: int = 3) -> list[tuple[str, str]]:
    rows = []
    for service, found in profile.items():
        rows.append((f"  {service}: {found['commands']} commands", f"{fmt(float(found['store_seconds']))} s"))
        rows += [
            (f"    {r['command']} ×{r['count']}", f"{fmt(float(r['mean_ms']))} ms each, {r['share'] * 100:.0f} %")
            for r in found["top"][:per_service]
            if r["share"] is not None
        ]
    return rows


def _spy_rows(spy: dict[str, Any], per_service: int = 4) -> list[tuple[str, str]]:
    if not spy:
        return []
    rows = [("Python CPU samples, saturated (py-spy): on CPU itself / project function above", "")]
    for service, found in spy.items():
        rows.append((f"  {service}: {found['samples']} samples", ""))
        rows += [(f"    self {r['function']}", f"{r['share'] * 100:.0f} %") for r in found["self"][:per_service]]
        rows += [(f"    under {r['function']}", f"{r['share'] * 100:.0f} %") for r in found["inclusive"][:per_service]]
    return rows


def _percent(ratio: float | None) -> str:
    return f"{ratio * 100:.1f} %" if ratio is not None else "-"


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
    print(table(json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "bench/results/latest.json").read_text())))
