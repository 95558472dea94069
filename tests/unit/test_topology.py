"""The topology (who writes and reads each topic) against the contract, the services' code and the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from shared.consumer import EventConsumer
from shared.schemas import EVENTS
from shared.topology import (
    ADMIN,
    PARTNER_FEEDS_WRITER,
    PARTNER_PREFIX,
    PARTNER_TOPIC_PREFIX,
    PRINCIPALS,
    RETIRED_PRINCIPALS,
    TOPICS,
    Operation,
    Pattern,
    Resource,
    acl_rules,
    acl_table,
    consumes,
    topics_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_topic_of_the_contract_has_producers_and_consumers() -> None:
    declared = {t.name for t in TOPICS}
    assert declared == {spec.topic for spec in EVENTS.values()}
    for t in TOPICS:
        assert t.producers and t.consumers, t.name
        assert set(t.producers) <= set(PRINCIPALS), t.name
        assert set(t.consumers) <= set(PRINCIPALS), t.name


def test_the_readme_tables_are_the_topology() -> None:
    readme = (ROOT / "README.md").read_text()
    assert topics_table() in readme, "README's topic table drifted from shared/topology.py: paste topics_table()"
    assert acl_table() in readme, "README's principals table drifted from shared/topology.py: paste acl_table()"


def test_services_are_granted_nothing_beyond_their_topics_groups_and_dead_letters() -> None:
    for name, principal in PRINCIPALS.items():
        for rule in acl_rules(name):
            assert rule.principal == name != ADMIN
            if rule.resource is Resource.GROUP:
                assert (rule.name, rule.pattern, rule.operation) == (
                    principal.consumer_group,
                    Pattern.PREFIXED,
                    Operation.READ,
                )
            elif rule.name == PARTNER_TOPIC_PREFIX:  # the partners' own feeds: written, never created
                assert (name, rule.pattern, rule.operation) == (PARTNER_FEEDS_WRITER, Pattern.PREFIXED, Operation.WRITE)
            elif rule.pattern is Pattern.PREFIXED:  # only its own dead letters, and only services have them
                assert principal.service is not None
                assert rule.name == f"relais.dead-letter.{principal.consumer_group}"
                assert rule.operation in (Operation.WRITE, Operation.CREATE)
            else:
                assert rule.operation in (Operation.READ, Operation.WRITE)
                assert rule.name in {t.name for t in TOPICS}


def test_no_principal_reads_a_partner_topic_but_that_partner() -> None:
    """The shared `partners` principal is retired (provisioning deletes it): no declared principal, service or
    not, may read any partner's status topic, and no declared topic is one."""
    assert set(RETIRED_PRINCIPALS).isdisjoint(PRINCIPALS)
    assert all(p.service is not None for p in PRINCIPALS.values()), "principals outside Relais are partners"
    assert not [t.name for t in TOPICS if t.name.startswith(PARTNER_TOPIC_PREFIX)]
    for name in PRINCIPALS:
        assert not [
            r for r in acl_rules(name) if r.operation is Operation.READ and r.name.startswith(PARTNER_TOPIC_PREFIX)
        ], name


def _subscriptions(monkeypatch: pytest.MonkeyPatch, build) -> list[str]:
    """The event types a service's composition root subscribes to (it builds, it does not start)."""
    seen: list[str] = []
    monkeypatch.setattr(EventConsumer, "on", lambda self, event_type, handler: seen.append(event_type))
    build()
    return seen


@pytest.mark.parametrize("principal", [name for name, p in PRINCIPALS.items() if p.service])
def test_each_service_consumes_only_what_the_topology_lets_it_read(
    principal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscription the topology does not grant would be refused by the broker at start."""
    service = PRINCIPALS[principal].service
    assert service is not None
    subscribed = _subscriptions(monkeypatch, lambda: _app(service, principal))
    assert {EVENTS[e].topic for e in subscribed} <= set(consumes(principal))
    assert subscribed or not consumes(principal)


def _app(service: str, principal: str) -> FastAPI:
    """The service's app as its composition root builds it (settings pointing nowhere; nothing starts)."""
    if service == "coaching":
        from services.coaching.app import create_app as coaching_app
        from services.coaching.settings import CoachingSettings

        return coaching_app(CoachingSettings(association=principal.removeprefix("coaching-")))
    if service == "routing":
        from services.routing.app import create_app as routing_app
        from services.routing.settings import RoutingSettings

        return routing_app(RoutingSettings())
    if service == "notifications":
        from services.notifications.app import create_app as notifications_app
        from services.notifications.settings import NotificationsSettings

        return notifications_app(NotificationsSettings())
    from services.intake.app import create_app as intake_app
    from services.intake.settings import IntakeSettings

    return intake_app(IntakeSettings())


def test_a_partner_principal_reads_only_its_own_topic_in_its_own_groups() -> None:
    from shared.topology import partner_principal, partner_rules, partner_topic

    rules = partner_rules("etude-martin")
    assert {(r.resource, r.name, r.pattern, r.operation) for r in rules} == {
        (Resource.TOPIC, "relais.partner-status.etude-martin.v1", Pattern.LITERAL, Operation.READ),
        (Resource.GROUP, "partner.etude-martin.", Pattern.PREFIXED, Operation.READ),
    }
    assert {r.principal for r in rules} == {partner_principal("etude-martin")} == {"partner.etude-martin"}
    assert partner_topic("etude-martin") not in {t.name for t in TOPICS}
    # Another partner's topic is out of reach, even one whose name starts alike: the READ is literal.
    reads = [r for r in rules if r.operation is Operation.READ and r.resource is Resource.TOPIC]
    assert [r.pattern for r in reads] == [Pattern.LITERAL] and partner_topic("etude-martin-2") not in {
        r.name for r in reads
    }
    assert all(p.consumer_group is None or not p.consumer_group.startswith(PARTNER_PREFIX) for p in PRINCIPALS.values())


def test_the_example_consumer_names_the_partner_s_topic_and_user_as_relais_does() -> None:
    from examples.partner_consumer import partner_topic as example_topic
    from examples.partner_consumer import partner_user
    from shared.topology import partner_principal, partner_topic

    assert example_topic("etude-martin") == partner_topic("etude-martin")
    assert partner_user("etude-martin") == partner_principal("etude-martin")
