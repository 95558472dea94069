"""Notifications' HTTP API: what was sent for a case, opt-outs, and the catalogue of public topics."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from markupsafe import escape
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notifications.domain import Recipient
from services.notifications.store import NotificationStore
from services.notifications.tokens import Tokens
from shared.schemas.asyncapi import asyncapi_document


class PreferenceIn(BaseModel):
    """Who opts out (or back in): a case and a recipient role, or the token of an email's unsubscribe link."""

    model_config = ConfigDict(extra="forbid")

    case_id: uuid.UUID | None = None
    recipient: Recipient | None = None
    token: str | None = Field(None, max_length=100)
    channel: Literal["email"] = "email"
    opted_out: bool = True

    @model_validator(mode="after")
    def identified(self) -> PreferenceIn:
        if self.token is None and (self.case_id is None or self.recipient is None):
            raise ValueError("Indiquez soit le jeton du lien de désabonnement, soit le dossier et le destinataire.")
        return self


def router(store: NotificationStore, tokens: Tokens, kafka_bootstrap: str) -> APIRouter:
    api = APIRouter(tags=["notifications"])

    @api.get("/cases/{case_id}/notifications", summary="Notifications recorded for a case (no contact details)")
    async def notifications(case_id: uuid.UUID) -> dict[str, Any]:
        return {"case_id": str(case_id), "notifications": await store.for_case(str(case_id))}

    @api.get("/cases/{case_id}/preferences", summary="Opt-outs recorded for a case")
    async def preferences(case_id: uuid.UUID) -> dict[str, Any]:
        return {"case_id": str(case_id), "preferences": await store.preferences_for(str(case_id))}

    @api.post("/preferences", summary="Opt a recipient out of a channel (or back in)", responses={404: {}, 422: {}})
    async def set_preference(body: PreferenceIn) -> dict[str, Any]:
        if body.token is not None:
            named = tokens.read_unsubscribe(body.token)
            if named is None:
                raise HTTPException(404, "Lien de désabonnement inconnu ou altéré.")
            case_id, recipient = named
        else:
            case_id, recipient = str(body.case_id), body.recipient  # type: ignore[assignment]
        saved = await store.set_preference(case_id, recipient, body.channel, body.opted_out,
                                           via="lien" if body.token else "api")
        return {k: v for k, v in saved.items() if k != "updated_at"}

    # Two steps on purpose: mail scanners open links in emails; only a person clicks the confirmation.
    @api.get("/desabonnement/{token}", response_class=HTMLResponse, summary="Unsubscribe page (from an email)")
    async def unsubscribe_page(token: str) -> HTMLResponse:
        if tokens.read_unsubscribe(token) is None:
            return _page("Lien inconnu", "Ce lien de désabonnement est inconnu ou incomplet.", status=404)
        link = f"/desabonnement/{escape(token)}/confirmer"
        return _page("Ne plus recevoir ces e-mails ?",
                     "Vous ne recevrez plus d'e-mails de Relais au sujet de ce dossier. "
                     f'<p><a href="{link}" style="font-weight:bold">Confirmer le désabonnement</a></p>', raw=True)

    @api.get("/desabonnement/{token}/confirmer", response_class=HTMLResponse, summary="Confirm unsubscribing")
    async def unsubscribe(token: str) -> HTMLResponse:
        named = tokens.read_unsubscribe(token)
        if named is None:
            return _page("Lien inconnu", "Ce lien de désabonnement est inconnu ou incomplet.", status=404)
        await store.set_preference(named[0], named[1], "email", True, via="lien")
        return _page("Désabonnement enregistré",
                     "C'est noté : vous ne recevrez plus d'e-mails de Relais au sujet de ce dossier.")

    @api.get("/asyncapi.json", summary="AsyncAPI 3 document of every public topic")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document(kafka_bootstrap)

    @api.get("/asyncapi", response_class=HTMLResponse, summary="The public topics, readable")
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(catalogue_html(asyncapi_document(kafka_bootstrap)))

    return api


def _page(title: str, text: str, status: int = 200, raw: bool = False) -> HTMLResponse:
    body = text if raw else str(escape(text))
    return HTMLResponse(
        f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f'<body style="font-family:Arial,sans-serif;max-width:40em;margin:3em auto">'
        f"<h1>{escape(title)}</h1><p>{body}</p></body></html>", status_code=status)


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
            for field, spec in payload.get("properties", {}).items())
        audience = channel["tags"][0]["name"]
        sections.append(
            f"<h2><code>{escape(channel['address'])}</code> <small>({escape(audience)})</small></h2>"
            f"<p>{escape(message['summary'])}</p>"
            f"<p>Message <b>{escape(name)}</b>; clé Kafka : {escape(message['bindings']['kafka']['key']['description'])}</p>"
            f"<table border=1 cellpadding=4 style='border-collapse:collapse'><tr><th>Champ</th><th>Type</th>"
            f"<th>Description</th></tr>{rows}</table>")
    return (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{escape(doc["info"]["title"])}'
            f'</title></head><body style="font-family:Arial,sans-serif;max-width:60em;margin:2em auto">'
            f'<h1>{escape(doc["info"]["title"])}</h1><p>{escape(doc["info"]["description"])}</p>'
            f'<p>Document AsyncAPI {escape(doc["asyncapi"])} : <a href="/asyncapi.json">/asyncapi.json</a></p>'
            + "".join(sections) + "</body></html>")


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " | ".join(_type(option) for option in spec["anyOf"])
    if "const" in spec:
        return f"« {spec['const']} »"
    return str(spec.get("type", "objet"))
