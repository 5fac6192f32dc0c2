"""/v1/credits: the balance, the transaction history, bonuses, gifts, and admin grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.paging import decode_cursor, page
from genyard.api.render import iso
from genyard.api.responses import JSON
from genyard.db.billing_repo import LedgerRow
from genyard.domain.accounts import Principal, Scope
from genyard.domain.billing import Balance, LedgerType
from genyard.domain.pricing import credits
from genyard.errors import Forbidden
from genyard.services.container import Services
from genyard.services.credits import BonusState, amount_of, grant_type

router = APIRouter(tags=["credits"])


class GiftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_user: str = Field(min_length=1, max_length=200, description="The recipient's user name.")
    amount: float | str = Field(description="Credits, at most 6 decimals.")


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, description="The user name.")
    amount: float | str = Field(description="Credits, at most 6 decimals.")
    type: str = Field(default="purchase", description="purchase, daily_bonus, weekly_bonus "
                      "or signup_bonus.")  # fmt: skip
    note: str | None = Field(default=None, max_length=200)


def render_transaction(row: LedgerRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "amount": credits(row.amount),
        "buckets": {
            "paid": credits(row.parts.paid),
            "free": credits(row.parts.free),
            "earned": credits(row.parts.earned),
        },
        "balance_after": credits(row.balance_after),
        "prediction_id": row.prediction_id,
        "note": row.note,
        "created_at": iso(row.created_at),
    }


def render_balance(balance: Balance, services: Services) -> dict[str, Any]:
    """The balance's buckets, ``held``, and ``max``: the cap bonuses fill ``free`` to."""
    cap = services.credits.bonuses.free_max
    return {**balance.to_dict(), "max": None if cap is None else credits(cap)}


def render_bonuses(states: list[BonusState]) -> dict[str, Any]:
    return {
        state.period.kind.value: {
            "amount": credits(state.amount),
            "period": state.period.name,
            "claimed": state.claimed,
            "claimable": state.claimable,
            "next_claimable_at": iso(state.next_claimable_at),
        }
        for state in states
    }


@router.get("/v1/credits/balance")
async def get_balance(
    services: ServicesDep, principal: Annotated[Principal, require(Scope.READ)]
) -> JSON:
    balance = await services.credits.balance(principal.account_id)
    bonus = None
    if services.settings.billing:
        bonus = render_bonuses(await services.credits.bonus_states(principal.account_id, balance))
    return JSON(
        {**render_balance(balance, services), "billing": services.settings.billing, "bonus": bonus}
    )


@router.post("/v1/credits/bonus")
async def claim_bonus(
    services: ServicesDep, principal: Annotated[Principal, require(Scope.WRITE)]
) -> JSON:
    claim = await services.credits.claim_bonuses(principal.account_id)
    return JSON(
        {
            "granted": [
                {
                    "type": row.type,
                    "period": period.name,
                    "amount": credits(row.amount),
                    "transaction_id": row.id,
                }
                for period, row in claim.granted
            ],
            "balance": render_balance(claim.balance, services),
            "bonus": render_bonuses(claim.bonuses),
        }
    )


@router.get("/v1/credits/transactions")
async def list_transactions(
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    type: LedgerType | None = None,
) -> JSON:
    rows = await services.credits.transactions(
        principal.account_id,
        limit=limit + 1,
        before=decode_cursor(cursor) if cursor else None,
        type=type.value if type else None,
    )
    return JSON(page(rows, limit, render_transaction))


@router.post("/v1/credits/gift", status_code=201)
async def send_gift(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.WRITE)],
) -> JSON:
    body = await json_body(request, GiftCreate)
    row = await services.credits.gift(principal.account_id, body.to_user, amount_of(body.amount))
    return JSON(render_transaction(row), status_code=201)


@router.post("/v1/credits/grant", status_code=201)
async def grant_credits(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.WRITE)],
) -> JSON:
    if not principal.is_admin:
        raise Forbidden("granting credits needs an admin key", {"required": "admin"})
    body = await json_body(request, GrantCreate)
    row = await services.credits.grant(
        body.user, amount_of(body.amount), grant_type(body.type), body.note
    )
    return JSON(render_transaction(row), status_code=201)
