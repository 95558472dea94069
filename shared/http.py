"""FastAPI plumbing shared by every service: French error messages, request limits, health, metrics."""

from __future__ import annotations

import math
import time
import typing
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import Metrics


class _MultiLine:
    """Marks a request field as free text: line breaks and tabs are allowed in it (`Annotated[str, MULTILINE]`)."""

    def __repr__(self) -> str:
        return "MULTILINE"


MULTILINE = _MultiLine()
# Bidirectional embeddings, overrides and isolates: they make a text read differently from what it holds.
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_TEXT_BREAKS = frozenset("\n\r\t")


def control_character(text: str, multiline: bool = False) -> str | None:
    """The first character a text field must not hold: control characters, line or paragraph separators and
    bidirectional controls (free text may hold line breaks and tabs)."""
    for ch in text:
        if multiline and ch in _TEXT_BREAKS:
            continue
        if ch in _BIDI or unicodedata.category(ch) in {"Cc", "Zl", "Zp"}:
            return ch
    return None


def _strings(value: Any) -> typing.Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def _is_multiline(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated and any(
        isinstance(m, _MultiLine) for m in annotation.__metadata__
    ):
        return True
    return any(_is_multiline(arg) for arg in typing.get_args(annotation))


class StrictRequest(BaseModel):
    """Base of every request body: an unknown field is an error (422), surrounding blanks are trimmed, and a
    text field holding control characters is refused (422); only fields marked MULTILINE take line breaks."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        multiline = any(isinstance(m, _MultiLine) for m in field.metadata) or _is_multiline(field.annotation)
        for text in _strings(value):
            if control_character(text, multiline) is not None:
                raise ValueError(
                    "Caractère de contrôle ou invisible interdit : retirez-le"
                    + ("." if multiline else " (ce champ tient sur une seule ligne).")
                )
        return value


class RateLimiter:
    """Per client, at most `per_minute` requests a minute, `per_minute` at once (a token bucket); the
    memory kept is bounded (the least recently seen client is forgotten first). 0: no limit."""

    def __init__(
        self, per_minute: float, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute, self.max_clients, self.clock = per_minute, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def hit(self, client: str) -> int | None:
        """Take one request from the client's bucket: None when allowed, else the seconds to wait."""
        if self.per_minute <= 0:
            return None
        now = self.clock()
        tokens, at = self._buckets.get(client, (self.per_minute, now))
        tokens = min(self.per_minute, tokens + (now - at) * self.per_minute / 60)
        allowed = tokens >= 1
        self._buckets[client] = (tokens - 1 if allowed else tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1 - tokens) * 60 / self.per_minute))

    def check(self, client: str) -> None:
        """Raise the 429 (French, with Retry-After) when the client is over its limit."""
        wait = self.hit(client)
        if wait is not None:
            raise HTTPException(
                429,
                f"Trop de demandes envoyées en peu de temps depuis votre connexion : réessayez dans {wait} secondes.",
                headers={"Retry-After": str(wait)},
            )

    def __len__(self) -> int:
        return len(self._buckets)


# pydantic error type -> French message; `{...}` placeholders come from the error's context.
_FRENCH = {
    "missing": "Ce champ est obligatoire.",
    "string_type": "Une chaîne de caractères est attendue.",
    "string_too_short": "Trop court : au moins {min_length} caractère(s).",
    "string_too_long": "Trop long : au plus {max_length} caractères.",
    "string_pattern_mismatch": "Format invalide.",
    "enum": "Valeur inconnue. Valeurs possibles : {expected}.",
    "literal_error": "Valeur inconnue. Valeurs possibles : {expected}.",
    "date_parsing": "Date invalide : le format attendu est AAAA-MM-JJ.",
    "date_from_datetime_parsing": "Date invalide : le format attendu est AAAA-MM-JJ.",
    "date_type": "Date invalide : le format attendu est AAAA-MM-JJ.",
    "date_future": "La date ne peut pas être dans le futur.",
    "datetime_parsing": "Date et heure invalides (format ISO 8601 attendu).",
    "int_parsing": "Un nombre entier est attendu.",
    "int_type": "Un nombre entier est attendu.",
    "greater_than_equal": "Doit être supérieur ou égal à {ge}.",
    "less_than_equal": "Doit être inférieur ou égal à {le}.",
    "greater_than": "Doit être supérieur à {gt}.",
    "bool_parsing": "Une valeur booléenne (true ou false) est attendue.",
    "bool_type": "Une valeur booléenne (true ou false) est attendue.",
    "extra_forbidden": "Champ inconnu.",
    "model_attributes_type": "Un objet JSON est attendu.",
    "dict_type": "Un objet JSON est attendu.",
    "list_type": "Une liste est attendue.",
    "json_invalid": "Le corps de la requête n'est pas un JSON valide.",
    "uuid_parsing": "Identifiant invalide (UUID attendu).",
    "uuid_type": "Identifiant invalide (UUID attendu).",
}


def french_message(error: dict[str, Any]) -> str:
    if error["type"] == "value_error":
        # Our validators raise ValueError with a French message; pydantic prefixes it.
        return str(error["msg"]).removeprefix("Value error, ")
    template = _FRENCH.get(error["type"])
    if template is None:
        return "Valeur invalide."
    ctx = {k: str(v).replace("' or '", "' ou '") for k, v in (error.get("ctx") or {}).items()}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template.split(":")[0] + "."


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts) or "body"


def invalid_field(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as pydantic's, for a check a request model cannot make (it needs a setting or
    the caller's identity)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *field.split(".")), "msg": message, "input": None}]
    )


def problem(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """An error response; `headers` are kept (e.g. WWW-Authenticate on a 401)."""
    return JSONResponse({"detail": message, **extra}, status_code=status, headers=dict(headers or {}))


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.http_rejections.labels("422").inc()
        # For malformed JSON the location is ("body", <character offset>): the offset is no field name.
        errors = [
            {
                "field": "body" if e["type"] == "json_invalid" else _field(tuple(e["loc"])),
                "message": french_message(e),
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        return problem(422, "Certaines informations sont invalides ou manquantes.", errors=errors)

    @app.exception_handler(ConnectionFailure)
    async def store_unavailable(_: Request, exc: ConnectionFailure) -> JSONResponse:
        # The store is restarting or unreachable: nothing was changed, the client may retry as is.
        metrics.http_rejections.labels("503").inc()
        response = problem(503, "Le service est momentanément indisponible : réessayez dans quelques instants.")
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        metrics.http_rejections.labels(str(exc.status_code)).inc()
        detail = exc.detail if isinstance(exc.detail, str) else "Erreur."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Ressource introuvable."
        elif exc.status_code == 405:
            detail = "Méthode non autorisée pour cette adresse."
        return problem(exc.status_code, detail, headers=exc.headers)


class RequestGuard:
    """Refuses oversize bodies (413) and non-JSON bodies (415) before the route reads anything.

    Paths under `form_paths` (the service's pages) take urlencoded forms as well."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics, form_paths: tuple[str, ...] = ()) -> None:
        self.app, self.max_bytes, self.metrics, self.form_paths = app, max_bytes, metrics, form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        form = ctype == "application/x-www-form-urlencoded" and scope["path"].startswith(self.form_paths)
        if ctype != "application/json" and not form:
            await self._refuse(
                scope, receive, send, 415, "Le corps de la requête doit être du JSON (Content-Type: application/json)."
            )
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(
                scope, receive, send, 413, f"Requête trop volumineuse : {self.max_bytes} octets au plus."
            )
            return

        received = 0
        too_big = False

        async def limited() -> Message:
            nonlocal received, too_big
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_big = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        if length is None:
            # Chunked upload: buffer up to the limit, then decide.
            chunks, more = [], True
            while more:
                message = await limited()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            if too_big:
                await self._refuse(
                    scope, receive, send, 413, f"Requête trop volumineuse : {self.max_bytes} octets au plus."
                )
                return
            body = b"".join(chunks)
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        self.metrics.http_rejections.labels(str(status)).inc()
        await problem(status, message)(scope, receive, send)


class RequestMetrics:
    """Counts every answered request by method and status, and times it; an unhandled error counts as 500.

    Health checks and scrapes are left out: they are operations' traffic, not the users'."""

    UNCOUNTED = frozenset({"/health", "/metrics"})

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.UNCOUNTED:
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.http_requests.labels(method, str(status)).inc()
            self.metrics.http_seconds.labels(method).observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Health(BaseModel):
    """Readiness: `ok` when every dependency answers (200), `degraded` otherwise (503)."""

    status: str
    checks: dict[str, bool]


def install_health_and_metrics(
    app: FastAPI, metrics: Metrics, checks: Callable[[], Awaitable[dict[str, bool]]], *, expose_metrics: bool = True
) -> None:
    """`/health` always (load balancers, orchestrators); `/metrics` when the settings expose it."""

    @app.get(
        "/health",
        tags=["operations"],
        summary="Readiness: Kafka and the store answer",
        response_model=Health,
        responses={503: {"model": Health, "description": "A dependency does not answer"}},
    )
    async def health() -> JSONResponse:
        results = await checks()
        ok = all(results.values())
        body = Health(status="ok" if ok else "degraded", checks=results)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    if not expose_metrics:
        return

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
