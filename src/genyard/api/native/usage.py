"""/v1/usage: an account's use per model and day, and per API key."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from genyard.api.deps import ServicesDep, require
from genyard.api.responses import JSON
from genyard.db import accounts_repo, jobs_repo
from genyard.domain.accounts import Principal, Scope
from genyard.domain.usage import report

router = APIRouter(tags=["usage"])
MAX_DAYS = 90


@router.get("/v1/usage")
async def get_usage(
    services: ServicesDep,
    principal: Annotated[Principal, require(Scope.READ)],
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
) -> JSON:
    """The last ``days`` days (whole UTC days, today included)."""
    now = time.time()
    since = (now // 86400 - (days - 1)) * 86400
    async with services.db.read() as conn:
        rows = await jobs_repo.usage_rows(conn, principal.account_id, since)
        keys = await accounts_repo.list_keys(conn, principal.user_id)
    names = {k.id: (k.name, k.prefix) for k in keys}
    return JSON({"since": time.strftime("%Y-%m-%d", time.gmtime(since)), **report(rows, names)})
