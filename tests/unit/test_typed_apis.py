"""Every JSON route of every service declares its answer's model (OpenAPI shows it, FastAPI filters by it);
pages and the Prometheus scrape say they are HTML or text."""

from __future__ import annotations

import importlib

import pytest
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.routing import APIRoute


@pytest.mark.parametrize("service", ["intake", "routing", "coaching", "notifications"])
def test_every_json_route_declares_its_response_model(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    untyped = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.include_in_schema
        and route.response_model is None
        and route.response_class not in (HTMLResponse, PlainTextResponse)
    ]
    assert untyped == []
