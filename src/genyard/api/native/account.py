"""/v1/account and /v1/keys: who am I, and my API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from genyard.api.deps import ServicesDep, json_body, require
from genyard.api.render import iso
from genyard.api.responses import JSON
from genyard.db.accounts_repo import KeyRow
from genyard.domain.accounts import (
    MAX_ACTIVE_KEYS,
    Principal,
    Scope,
    effective_scopes,
    parse_scopes,
)
from genyard.errors import InvalidRequest

router = APIRouter(tags=["account"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=200)
    scopes: list[str] = Field(
        default_factory=list,
        description="Any of read, write, generate. Empty means full access.",
    )


def render_key(key: KeyRow) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        # Effective scopes: a key stored with none has all of them.
        "scopes": sorted(effective_scopes(parse_scopes(key.scopes))),
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
        "active": key.revoked_at is None,
    }


@router.get("/v1/account")
async def get_account(principal: Annotated[Principal, require(Scope.READ)]) -> JSON:
    return JSON(
        {
            "id": principal.account_id,
            "user": {
                "id": principal.user_id,
                "name": principal.user_name,
                "is_admin": principal.is_admin,
                "tier": principal.tier,
            },
            "key": {"id": principal.key_id, "scopes": sorted(effective_scopes(principal.scopes))},
        }
    )


@router.get("/v1/keys")
async def list_keys(
    services: ServicesDep, principal: Annotated[Principal, require(Scope.READ)]
) -> JSON:
    keys = await services.accounts.keys(principal.user_id)
    return JSON({"data": [render_key(k) for k in keys], "max_active": MAX_ACTIVE_KEYS})


@router.post(
    "/v1/keys",
    status_code=201,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": KeyCreate.model_json_schema()}}}
    },
)
async def create_key(
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.WRITE)],
) -> JSON:
    body = await json_body(request, KeyCreate)
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as exc:
        raise InvalidRequest(
            f"scopes: {exc}", {"errors": [{"field": "scopes", "message": str(exc)}]}
        ) from None
    user = await services.accounts.user(principal.user_name)
    issued = await services.accounts.create_key(
        user, name=body.name, scopes=scopes, granted_by=principal
    )
    return JSON({**render_key(issued.row), "key": issued.secret}, status_code=201)


@router.delete("/v1/keys/{key_id}")
async def revoke_key(
    key_id: str,
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.WRITE)],
) -> JSON:
    key = await services.accounts.revoke_key(key_id, owner_id=principal.user_id)
    return JSON(render_key(key))
