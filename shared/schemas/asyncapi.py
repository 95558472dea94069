"""An AsyncAPI 3.0 document of every topic Relais publishes, generated from the contract's own models.

Generated rather than written so that it cannot drift: the channels come from the `EVENTS` registry and
the partners' topics, the payloads from the same JSON Schemas as `json/`. Each schema's `$defs` are hoisted
into `components.schemas` (AsyncAPI tools resolve `$ref` against the whole document).
"""

from __future__ import annotations

import copy
from typing import Any

from shared.schemas.events import EVENTS
from shared.schemas.export import schema_of
from shared.schemas.partner_feed import PARTNER_TOPIC_PATTERN, RECORD_TYPE, feed_schema

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

_HEADER = {"type": "string"}
ENVELOPE_HEADERS = {
    "type": "object",
    "properties": dict.fromkeys(
        ("event-type", "schema-version", "event-id", "correlation-id", "content-type"), _HEADER
    ),
}
FEED_HEADERS = {
    "type": "object",
    "properties": dict.fromkeys(("record-type", "schema-version", "record-id", "content-type"), _HEADER),
}


def asyncapi_document(server_host: str = "localhost:9092") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Relais — public topics",
            "version": "1",
            "description": (
                "Topics of the shared referral flow of Second Souffle and 60 000 rebonds. The `relais-interne` "
                "topics carry the flow's events between Relais services (CaseReceived holds personal data); "
                "the `partenaires` channel is the only one meant for referring partners: each partner with an "
                "account has a topic of its own, readable with its own credentials only, carrying the statuses "
                "of the referrals it made with its account, keyed by its own reference, without personal data. "
                "There is no shared partner topic: a referral made without an account is followed by email."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": server_host,
                "protocol": "kafka",
                "description": "Kafka bootstrap server (the local stack's by default).",
            }
        },
        "channels": {},
        "operations": {},
        "components": {"schemas": {}, "messages": {}},
    }
    for spec in EVENTS.values():
        subject = "antenna id" if spec.subject == "antenna" else "case id (UUID)"
        _add(
            doc,
            channel=spec.topic,
            message=spec.name,
            schema=schema_of(spec),
            headers=ENVELOPE_HEADERS,
            key_description=f"The {subject}: one subject's events stay in order on one partition.",
            summary=(spec.model.__doc__ or spec.name).strip().splitlines()[0],
            audience="relais-interne",
        )
    _add(
        doc,
        channel=PARTNER_TOPIC_PATTERN,
        message=RECORD_TYPE,
        schema=feed_schema(),
        headers=FEED_HEADERS,
        key_description="The partner's own reference: one referral's statuses stay in order.",
        summary="A referral's status changed (received, routed, accepted, declined, closed).",
        audience="partenaires",
        parameters={
            "partner": {
                "description": "The partner's account name (`relais partners add <partner>`); only the principal "
                "`partner.<partner>` may read the topic."
            }
        },
    )
    _check_refs(doc)
    return doc


def _add(
    doc: dict[str, Any],
    *,
    channel: str,
    message: str,
    schema: dict[str, Any],
    headers: dict[str, Any],
    key_description: str,
    summary: str,
    audience: str,
    parameters: dict[str, Any] | None = None,
) -> None:
    """One channel; with `parameters`, `channel` is an address pattern (`{name}` per parameter)."""
    payload = _hoist(schema, doc["components"]["schemas"], owner=message)
    channel_id = channel.replace(".", "-").replace("{", "").replace("}", "")
    doc["components"]["messages"][message] = {
        "name": message,
        "title": message,
        "summary": summary,
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key_description},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    binding: dict[str, Any] = {"bindingVersion": KAFKA_BINDING_VERSION}
    if not parameters:  # a pattern names many topics: no one topic to bind
        binding["topic"] = channel
    doc["channels"][channel_id] = {
        "address": channel,
        "title": channel,
        "description": summary,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "tags": [{"name": audience}],
        **({"parameters": parameters} if parameters else {}),
        "bindings": {"kafka": binding},
    }
    doc["operations"][f"send{message}"] = {
        "action": "send",
        "title": f"Relais publishes {message}",
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message}"}],
        "tags": [{"name": audience}],
    }


def _hoist(schema: dict[str, Any], shared: dict[str, Any], owner: str) -> dict[str, Any]:
    """Move `$defs` into the document's components, rewriting references (a clash gets the owner's prefix)."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    if "$id" in schema:  # a `$id` would change the base against which `#/components/...` resolves
        schema["x-schema-id"] = schema.pop("$id")
    renamed = {}
    for name, definition in defs.items():
        target = name if shared.get(name, definition) == definition else f"{owner}{name}"
        renamed[name] = target
    for name, definition in defs.items():
        shared[renamed[name]] = _rewrite(definition, renamed)
    rewritten: dict[str, Any] = _rewrite(schema, renamed)  # a dict rewritten is a dict
    return rewritten


def _rewrite(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = f"#/components/schemas/{renamed[value.removeprefix('#/$defs/')]}"
            else:
                out[key] = _rewrite(value, renamed)
        return out
    if isinstance(node, list):
        return [_rewrite(item, renamed) for item in node]
    return node


def _check_refs(doc: dict[str, Any]) -> None:
    """Every local `$ref` must resolve: a broken document is a bug, not something to publish."""

    def resolve(ref: str) -> None:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    resolve(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
