"""Who may write and read each topic: the one declaration the broker's ACLs are derived from.

Each service, and each coaching instance, is its own Kafka principal (SCRAM user). A principal writes only
the topics it produces, reads only those it consumes, joins only consumer groups named after itself (a
prefix, so that `routing-<tag>` test groups and scaled-out instances work) and writes and creates only
its own dead-letter topics. The README's topic table is generated from `TOPICS` (a unit test compares),
and `ops.kafka_security` turns `acl_rules()` into broker ACLs, applied idempotently by the `admin` principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.schemas import EVENTS, PARTNER_TOPIC_PATTERN
from shared.schemas.partner_feed import partner_topic as partner_topic  # where the ACLs and tools find it

# The one super user: provisioning (users, topics, ACLs) and operator tools (dead letters). No service uses it.
ADMIN = "admin"
DEAD_LETTER_PREFIX = "relais.dead-letter."

# Coaching runs once per association; each instance is a principal of its own.
COACHING = ("coaching-second_souffle", "coaching-60000_rebonds")

# Principals no longer declared: the topology's provisioning deletes their credential and every ACL of them.
# `partners` read a shared feed of every referral made without an account (each partner saw the others').
RETIRED_PRINCIPALS = ("partners",)


@dataclass(frozen=True)
class Principal:
    name: str  # the SCRAM user name, `User:<name>` for the broker
    service: str | None  # the module it runs (`python -m services.<service>`); None outside Relais
    consumer_group: str | None  # prefix of the consumer groups it may use (None: it consumes nothing)


PRINCIPALS: dict[str, Principal] = {
    p.name: p
    for p in (
        Principal("intake", "intake", None),
        Principal("routing", "routing", "routing"),
        *(Principal(name, "coaching", name) for name in COACHING),
        Principal("notifications", "notifications", "notifications"),
    )
}


@dataclass(frozen=True)
class Topic:
    name: str
    carries: str  # what the README says it carries
    producers: tuple[str, ...]
    consumers: tuple[str, ...]  # principals


def _event(event: str, producers: tuple[str, ...], consumers: tuple[str, ...], note: str = "") -> Topic:
    return Topic(EVENTS[event].topic, f"`{event}`{note}", producers, consumers)


TOPICS: tuple[Topic, ...] = (
    _event("CaseReceived", ("intake",), ("routing", "notifications")),
    _event("CaseRouted", ("routing",), (*COACHING, "notifications")),
    _event("CommitteeApproved", COACHING, ("notifications",)),
    _event("SessionHeld", COACHING, ("notifications",)),
    _event("CaseClosed", COACHING, ("notifications",)),
    # Carries the volunteer's professional contact, for the emails that introduce them.
    _event("VolunteerAssigned", COACHING, ("notifications",)),
    _event("RerouteRequested", COACHING, ("routing",)),
    _event("AntennaCapacityChanged", COACHING, ("routing",), " (keyed by antenna id)"),
    # The applicant's name and email, for the email that answers them; keyed by the application's id.
    _event("VolunteerApplicationDecided", COACHING, ("notifications",), " (keyed by the application's id)"),
)


def topic(name: str) -> Topic:
    return next(t for t in TOPICS if t.name == name)


def produces(principal: str) -> list[str]:
    return [t.name for t in TOPICS if principal in t.producers]


def consumes(principal: str) -> list[str]:
    return [t.name for t in TOPICS if principal in t.consumers]


def dead_letter_prefix(consumer_group: str) -> str:
    """Every dead-letter topic of the groups named after `consumer_group` (`relais.dead-letter.<group>.v1`)."""
    return f"{DEAD_LETTER_PREFIX}{consumer_group}"


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DESCRIBE = "describe"


@dataclass(frozen=True, order=True)
class Rule:
    """One ALLOW ACL: `principal` may `operation` on the resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def acl_rules(principal: str) -> list[Rule]:
    """What `principal` is allowed, derived from the declarations above (READ and WRITE imply DESCRIBE).

    Services create no topic but their own dead-letter topics: the contract's topics are created by the
    admin provisioning (partitions decided once), while a dead-letter topic belongs to a consumer group whose
    name is chosen where the service is deployed (tests, scale-out), so the service creates it when needed.
    """
    p = PRINCIPALS[principal]
    rules = [Rule(principal, Resource.TOPIC, name, Pattern.LITERAL, Operation.WRITE) for name in produces(principal)]
    if principal == PARTNER_FEEDS_WRITER:
        # Each partner's own status feed (`relais partners add` creates it; the writer never creates one).
        rules.append(Rule(principal, Resource.TOPIC, PARTNER_TOPIC_PREFIX, Pattern.PREFIXED, Operation.WRITE))
    rules += [Rule(principal, Resource.TOPIC, name, Pattern.LITERAL, Operation.READ) for name in consumes(principal)]
    if p.consumer_group is not None:
        # Join, commit and fetch the committed offsets (the lag monitor) of its own groups only.
        rules.append(Rule(principal, Resource.GROUP, p.consumer_group, Pattern.PREFIXED, Operation.READ))
    if p.consumer_group is not None and p.service is not None:
        dead_letters = dead_letter_prefix(p.consumer_group)
        rules += [
            Rule(principal, Resource.TOPIC, dead_letters, Pattern.PREFIXED, Operation.WRITE),
            Rule(principal, Resource.TOPIC, dead_letters, Pattern.PREFIXED, Operation.CREATE),
        ]
    return sorted(rules)


def all_acl_rules() -> list[Rule]:
    return [rule for name in PRINCIPALS for rule in acl_rules(name)]


def provisioned_topics() -> list[str]:
    """Topics the admin creates at provisioning (services create none of these)."""
    return [t.name for t in TOPICS]


def _who(principals: tuple[str, ...]) -> str:
    names = list(principals)
    if all(c in names for c in COACHING):
        at = names.index(COACHING[0])
        names = [n for n in names if n not in COACHING]
        names.insert(at, "coaching (each association)")
    return ", ".join(names)


def topics_table() -> str:
    """The README's topic table, from `TOPICS`."""
    lines = ["| topic | carries | producer | consumers |", "|---|---|---|---|"]
    lines += [f"| `{t.name}` | {t.carries} | {_who(t.producers)} | {_who(t.consumers)} |" for t in TOPICS]
    lines.append(
        f"| `{PARTNER_TOPIC_PREFIX}<partner>.v1` | partner status record (keyed by the partner's reference) | "
        f"{PARTNER_FEEDS_WRITER} | that partner only (`{PARTNER_PREFIX}<partner>`) |"
    )
    lines.append(
        f"| `{DEAD_LETTER_PREFIX}<group>.v1` | anything a consumer group could not process | every "
        f"consumer (its own groups only) | operators ({ADMIN}) |"
    )
    return "\n".join(lines)


def acl_table() -> str:
    """The README's table of principals and their rights, from `acl_rules` and `partner_rules`."""
    lines = ["| principal | writes | reads | consumer groups | creates |", "|---|---|---|---|---|"]
    lines += [_acl_row(name, acl_rules(name)) for name in PRINCIPALS]
    lines.append(_acl_row(partner_principal("<partner>"), partner_rules("<partner>")))
    lines.append(
        f"| `{ADMIN}` | super user: provisioning (users, topics, ACLs), `relais dlq`, the broker's own "
        "inter-broker and controller connections | | | |"
    )
    return "\n".join(lines)


def _acl_row(name: str, rules: list[Rule]) -> str:
    def shown(rule: Rule) -> str:
        return f"`{rule.name}*`" if rule.pattern is Pattern.PREFIXED else f"`{rule.name}`"

    writes = [shown(r) for r in rules if r.resource is Resource.TOPIC and r.operation is Operation.WRITE]
    reads = [shown(r) for r in rules if r.resource is Resource.TOPIC and r.operation is Operation.READ]
    groups = [shown(r) for r in rules if r.resource is Resource.GROUP]
    creates = [shown(r) for r in rules if r.operation is Operation.CREATE]
    return (
        f"| `{name}` | {', '.join(writes) or '—'} | {', '.join(reads) or '—'} | "
        f"{', '.join(groups) or '—'} | {', '.join(creates) or '—'} |"
    )


# Partners as principals of their own (`relais partners add`): each reads only its own status topic, in its
# own consumer groups. Notifications writes there the records of the referrals the partner made with its HTTP
# credential. There is no shared partner topic: a referral made without an account is followed by email.
PARTNER_PREFIX = "partner."
PARTNER_TOPIC_PREFIX = PARTNER_TOPIC_PATTERN.split("{", 1)[0]
PARTNER_FEEDS_WRITER = "notifications"


def partner_principal(partner: str) -> str:
    return f"{PARTNER_PREFIX}{partner}"


def partner_rules(partner: str) -> list[Rule]:
    principal = partner_principal(partner)
    return sorted(
        [
            Rule(principal, Resource.TOPIC, partner_topic(partner), Pattern.LITERAL, Operation.READ),
            # `partner.<name>.`: the dot keeps `partner.etude-martin` out of `partner.etude-martin-2`'s groups
            # (a partner name has no dot).
            Rule(principal, Resource.GROUP, f"{principal}.", Pattern.PREFIXED, Operation.READ),
        ]
    )
