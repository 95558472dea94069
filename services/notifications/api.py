"""Notifications' HTTP API: what was sent for a case (staff), opting out or back in (signed links only),
and the catalogue of public topics."""
# No `from __future__ import annotations` here: FastAPI must see the routes' local dependencies itself.

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse
from markupsafe import escape
from pydantic import BaseModel, ConfigDict, Field

from services.notifications.domain import Recipient, Status
from services.notifications.service import NotificationsService, Preference
from shared.auth import Authenticator, Staff
from shared.http import StrictRequest
from shared.schemas.asyncapi import asyncapi_document


class PreferenceIn(StrictRequest):
    """Opting out (or back in) of a case's emails: only with the signed token of an email's link, which names
    the case and the recipient and cannot be made without the service's secret."""

    token: str = Field(min_length=1, max_length=100)
    channel: Literal["email"] = "email"
    opted_out: bool = True


class NotificationOut(BaseModel):
    """One message to one recipient about one event: where it stands, never who it was addressed to."""

    id: str
    event_id: str
    event_type: str
    recipient: Recipient
    template: str
    channel: str
    status: Status
    created_at: datetime
    failures: int = 0
    last_error: str | None = None  # SMTP codes and error types only
    reason: str | None = None  # why it failed for good
    finished_at: datetime | None = None
    in_doubt: bool = False  # recorded as sent after a crash that left it unknown (`in_doubt=assume_sent`)


class CaseNotifications(BaseModel):
    case_id: uuid.UUID
    notifications: list[NotificationOut]


class PreferenceOut(BaseModel):
    case_id: uuid.UUID
    recipient: Recipient
    channel: str
    opted_out: bool
    via: Literal["api", "lien"]
    updated_at: datetime | None = None


class CasePreferences(BaseModel):
    case_id: uuid.UUID
    preferences: list[PreferenceOut]


class AsyncApiDocument(BaseModel):
    """An AsyncAPI 3.0 document (its own schema: https://www.asyncapi.com/docs/reference/specification/v3.0.0)."""

    model_config = ConfigDict(extra="allow")

    asyncapi: str
    info: dict[str, Any]
    servers: dict[str, Any]
    channels: dict[str, Any]
    components: dict[str, Any]


UNKNOWN_LINK = "Lien de désabonnement inconnu ou altéré."


def router(
    service: NotificationsService, auth: Authenticator, kafka_bootstrap: str, *, expose_asyncapi: bool = True
) -> APIRouter:
    """A case's notifications and preferences: staff of the association that holds the case (its latest
    routing); for the other association's staff the case is "introuvable". Before any routing the case is
    nobody's yet and either association's staff may look (statuses only: never a contact). Opting out or
    back in: the signed token of an email's link, nothing else."""
    api = APIRouter(tags=["notifications"])
    Authenticated: TypeAlias = Annotated[Staff, Depends(auth.staff())]

    async def held_case(case_id: uuid.UUID, staff: Authenticated) -> uuid.UUID:
        holder = await service.holder_of(str(case_id))
        if holder is not None and holder is not staff.association:
            raise HTTPException(404, "Dossier introuvable.")
        return case_id

    HeldCase: TypeAlias = Annotated[uuid.UUID, Depends(held_case)]

    @api.get(
        "/cases/{case_id}/notifications",
        response_model=CaseNotifications,
        responses={404: {}},
        summary="Notifications recorded for a case the association holds (statuses, never a contact)",
    )
    async def notifications(case_id: HeldCase) -> CaseNotifications:
        found = await service.notifications_of(str(case_id))
        return CaseNotifications(case_id=case_id, notifications=[NotificationOut.model_validate(n) for n in found])

    @api.get(
        "/cases/{case_id}/preferences",
        response_model=CasePreferences,
        responses={404: {}},
        summary="Opt-outs recorded for a case the association holds",
    )
    async def preferences(case_id: HeldCase) -> CasePreferences:
        found = await service.preferences_of(str(case_id))
        return CasePreferences(case_id=case_id, preferences=[_preference(p) for p in found])

    @api.post(
        "/preferences",
        response_model=PreferenceOut,
        responses={404: {}, 422: {}},
        summary="Opt the recipient an email's link names out of a channel (or back in)",
    )
    async def set_preference(body: PreferenceIn) -> PreferenceOut:
        saved = await service.set_preference_by_token(body.token, channel=body.channel, opted_out=body.opted_out)
        if saved is None:
            raise HTTPException(404, UNKNOWN_LINK)
        return _preference(saved)

    # Two steps on purpose: mail scanners open links in emails; only a person clicks the confirmation.
    @api.get("/desabonnement/{token}", response_class=HTMLResponse, summary="Unsubscribe page (from an email)")
    async def unsubscribe_page(token: str) -> HTMLResponse:
        if service.unsubscribing(token) is None:
            return _page("Lien inconnu", "Ce lien de désabonnement est inconnu ou incomplet.", status=404)
        link = f"/desabonnement/{escape(token)}/confirmer"
        return _page(
            "Ne plus recevoir ces e-mails ?",
            "Vous ne recevrez plus d'e-mails de Relais au sujet de ce dossier. "
            f'<p><a href="{link}" style="font-weight:bold">Confirmer le désabonnement</a></p>',
            raw=True,
        )

    @api.get("/desabonnement/{token}/confirmer", response_class=HTMLResponse, summary="Confirm unsubscribing")
    async def unsubscribe(token: str) -> HTMLResponse:
        if await service.set_preference_by_token(token) is None:
            return _page("Lien inconnu", "Ce lien de désabonnement est inconnu ou incomplet.", status=404)
        return _page(
            "Désabonnement enregistré", "C'est noté : vous ne recevrez plus d'e-mails de Relais au sujet de ce dossier."
        )

    if not expose_asyncapi:
        return api

    @api.get("/asyncapi.json", response_model=AsyncApiDocument, summary="AsyncAPI 3 document of every public topic")
    async def asyncapi() -> AsyncApiDocument:
        return AsyncApiDocument.model_validate(asyncapi_document(kafka_bootstrap))

    @api.get("/asyncapi", response_class=HTMLResponse, summary="The public topics, readable")
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(catalogue_html(asyncapi_document(kafka_bootstrap)))

    return api


def _preference(preference: Preference) -> PreferenceOut:
    return PreferenceOut(
        case_id=uuid.UUID(preference.case_id),
        recipient=preference.recipient,
        channel=preference.channel,
        opted_out=preference.opted_out,
        via=preference.via,
        updated_at=preference.updated_at,
    )


def _page(title: str, text: str, status: int = 200, raw: bool = False) -> HTMLResponse:
    body = text if raw else str(escape(text))
    return HTMLResponse(
        f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f'<body style="font-family:Arial,sans-serif;max-width:40em;margin:3em auto">'
        f"<h1>{escape(title)}</h1><p>{body}</p></body></html>",
        status_code=status,
    )


def catalogue_html(doc: dict[str, Any]) -> str:
    """One section per topic: audience, key, and the payload's top-level fields."""
    messages = doc["components"]["messages"]
    sections = []
    for channel in doc["channels"].values():
        name = next(iter(channel["messages"]))
        message = messages[name]
        payload = message["payload"]
        rows = "".join(
            f"<tr><td><code>{escape(field)}</code></td><td>{escape(_type(spec))}</td>"
            f"<td>{escape(spec.get('description', ''))}</td></tr>"
            for field, spec in payload.get("properties", {}).items()
        )
        audience = channel["tags"][0]["name"]
        key = message["bindings"]["kafka"]["key"]["description"]
        sections.append(
            f"<h2><code>{escape(channel['address'])}</code> <small>({escape(audience)})</small></h2>"
            f"<p>{escape(message['summary'])}</p>"
            f"<p>Message <b>{escape(name)}</b>; clé Kafka : {escape(key)}</p>"
            f"<table border=1 cellpadding=4 style='border-collapse:collapse'><tr><th>Champ</th><th>Type</th>"
            f"<th>Description</th></tr>{rows}</table>"
        )
    return (
        f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{escape(doc["info"]["title"])}'
        f'</title></head><body style="font-family:Arial,sans-serif;max-width:60em;margin:2em auto">'
        f"<h1>{escape(doc['info']['title'])}</h1><p>{escape(doc['info']['description'])}</p>"
        f'<p>Document AsyncAPI {escape(doc["asyncapi"])} : <a href="/asyncapi.json">/asyncapi.json</a></p>'
        + "".join(sections)
        + "</body></html>"
    )


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " | ".join(_type(option) for option in spec["anyOf"])
    if "const" in spec:
        return f"« {spec['const']} »"
    return str(spec.get("type", "objet"))
