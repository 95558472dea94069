"""JSON Schema files of the contract, committed next to the models, and the compatibility rule.

`python -m shared.schemas.export` rewrites `json/`; the unit tests fail when a model no longer matches the
committed file or when a change would break readers of the committed version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.schemas.envelope import Envelope
from shared.schemas.events import EVENTS, EventSpec

SCHEMA_DIR = Path(__file__).parent / "json"


def schema_of(spec: EventSpec) -> dict[str, Any]:
    """The envelope's schema with `payload` narrowed to this event's model."""
    envelope = Envelope.model_json_schema()
    payload = spec.model.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**payload.pop("$defs", {}), **envelope.pop("$defs", {})}
    envelope["properties"]["payload"] = payload
    envelope["properties"]["event_type"] = {"const": spec.name, "title": "Event Type", "type": "string"}
    envelope["title"] = spec.name
    envelope["$id"] = f"https://relais.example/schemas/{spec.schema_file}"
    envelope["x-topic"] = spec.topic
    envelope["x-schema-version"] = spec.version
    if defs:
        envelope["$defs"] = defs
    return envelope


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, dict[str, Any]]:
    """File name -> content of everything under `json/`: one schema per event, the partner topics' record, AsyncAPI."""
    from shared.schemas.asyncapi import asyncapi_document
    from shared.schemas.partner_feed import PARTNER_FEED_SCHEMA_FILE, feed_schema

    files = {spec.schema_file: schema_of(spec) for spec in EVENTS.values()}
    files[PARTNER_FEED_SCHEMA_FILE] = feed_schema()
    files["asyncapi.json"] = asyncapi_document()
    return files


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for name, content in generated_files().items():
        path = SCHEMA_DIR / name
        path.write_text(render(content))
        written.append(path)
    return written


def breaking_changes(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """What in `new` would break a reader or writer of `old` (backward and forward compatibility).

    Breaking: a property removed, its type changed, a new required property, an enum value removed.
    Adding optional properties and enum values is allowed.
    """
    problems: list[str] = []
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})

    def resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def walk(o: dict[str, Any], n: dict[str, Any], path: str) -> None:
        o, n = resolve(o, old_defs), resolve(n, new_defs)
        if o.get("type") != n.get("type"):
            problems.append(f"{path or '/'}: type {o.get('type')} -> {n.get('type')}")
        if "enum" in o:
            removed = set(o["enum"]) - set(n.get("enum", []))
            if removed:
                problems.append(f"{path}: enum values removed {sorted(removed)}")
        for key in set(n.get("required", [])) - set(o.get("required", [])):
            problems.append(f"{path}/{key}: newly required")
        for key, sub in o.get("properties", {}).items():
            if key not in n.get("properties", {}):
                problems.append(f"{path}/{key}: removed")
            else:
                walk(sub, n["properties"][key], f"{path}/{key}")
        for variant in ("anyOf",):
            if variant in o and variant in n and len(o[variant]) == len(n[variant]):
                for i, (a, b) in enumerate(zip(o[variant], n[variant], strict=True)):
                    walk(a, b, f"{path}[{i}]")

    walk(old, new, where)
    return problems


def main() -> int:
    for path in write_all():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
