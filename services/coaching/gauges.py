"""The coordinators' figures as Prometheus gauges, set from the very result the API returns."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from shared.schemas import Association


class CoordinationGauges:
    def __init__(self, registry: CollectorRegistry, association: Association) -> None:
        self.association = association.value

        def gauge(name: str, text: str, *labels: str) -> Gauge:
            return Gauge(name, text, ["association", "antenna", *labels], registry=registry)

        self.open_cases = gauge("relais_coaching_open_cases", "Open cases by step", "step")
        self.wait_mean = gauge(
            "relais_coaching_wait_days_mean", "Mean days between two steps (reception_comite, comite_coach)", "wait"
        )
        self.wait_max = gauge("relais_coaching_wait_days_max", "Longest days between two steps", "wait")
        self.overdue = gauge(
            "relais_coaching_overdue_cases",
            "Open cases past a target (comite: no decision in time; coach: none assigned in time)",
            "target",
        )
        self.followed = gauge("relais_coaching_volunteer_followed", "People the antenna's volunteers follow", "role")
        self.capacity = gauge(
            "relais_coaching_volunteer_capacity", "People the antenna's available volunteers can follow at once", "role"
        )
        self.free = gauge("relais_coaching_volunteer_slots_free", "Places free with available volunteers", "role")
        self.waiting = gauge("relais_coaching_waiting_cases", "Approved cases without a volunteer of the role", "role")
        self.blocked = gauge(
            "relais_coaching_waiting_blocked_cases",
            "Approved cases waiting because no volunteer of the role is free",
            "role",
        )

    def show(self, figures: dict[str, dict[str, Any]]) -> None:
        """Replace every series (no await here: a scrape never sees a half-updated set)."""
        for metric in (
            self.open_cases,
            self.wait_mean,
            self.wait_max,
            self.overdue,
            self.followed,
            self.capacity,
            self.free,
            self.waiting,
            self.blocked,
        ):
            metric.clear()
        for antenna, f in figures.items():
            labels = (self.association, antenna)
            for step, count in f["open_cases"].items():
                self.open_cases.labels(*labels, step).set(count)
            for wait, stats in f["waiting_days"].items():
                self.wait_mean.labels(*labels, wait).set(stats["mean_days"] or 0)
                self.wait_max.labels(*labels, wait).set(stats["max_days"] or 0)
            for target, cases in f["overdue"].items():
                self.overdue.labels(*labels, target).set(len(cases))
            for role, load in f["load"].items():
                self.followed.labels(*labels, role).set(load["followed"])
                self.capacity.labels(*labels, role).set(load["capacity"])
                self.free.labels(*labels, role).set(load["free"])
            for role, waiting in f["waiting_list"].items():
                self.waiting.labels(*labels, role).set(waiting["cases"])
                self.blocked.labels(*labels, role).set(waiting["blocked"])
