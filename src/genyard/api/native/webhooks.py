"""Webhooks: the account's signing secret, a prediction's delivery log, redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from genyard.api.deps import ServicesDep, require
from genyard.api.render import iso
from genyard.api.responses import JSON
from genyard.db.webhooks_repo import Delivery
from genyard.domain.accounts import Principal, Scope

router = APIRouter(tags=["webhooks"])


def render_delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "prediction_id": delivery.prediction_id,
        "event": delivery.event,
        "url": delivery.url,
        "status": delivery.status.value,
        "attempts": [
            {
                "attempted_at": iso(a.attempted_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
            }
            for a in delivery.log
        ],
        "next_attempt_at": iso(delivery.next_attempt_at)
        if delivery.status.value == "pending"
        else None,
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at),
    }


@router.get("/v1/webhooks/secret")
async def get_webhook_secret(
    services: ServicesDep, principal: Annotated[Principal, require(Scope.WRITE)]
) -> JSON:
    """The secret that signs this account's webhooks (Standard Webhooks, ``whsec_...``)."""
    return JSON({"key": await services.webhooks.secrets.current(principal.account_id)})


@router.post("/v1/webhooks/secret/rotate")
async def rotate_webhook_secret(
    services: ServicesDep, principal: Annotated[Principal, require(Scope.WRITE)]
) -> JSON:
    """A new secret; deliveries are signed with the old one too for 24 hours."""
    key, previous_until = await services.webhooks.secrets.rotate(principal.account_id)
    return JSON({"key": key, "previous_key_valid_until": iso(previous_until)})


@router.get("/v1/predictions/{prediction_id}/webhooks")
async def list_webhook_deliveries(
    prediction_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
) -> JSON:
    deliveries = await services.webhooks.deliveries(prediction_id, principal.account_id)
    return JSON({"data": [render_delivery(d) for d in deliveries]})


@router.post("/v1/predictions/{prediction_id}/webhooks/{delivery_id}/redeliver", status_code=202)
async def redeliver_webhook(
    prediction_id: str,
    delivery_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.GENERATE)],
) -> JSON:
    delivery = await services.webhooks.redeliver(prediction_id, delivery_id, principal.account_id)
    return JSON(render_delivery(delivery), status_code=202)
