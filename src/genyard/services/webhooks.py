"""Webhooks for users: the account's signing secret (read, rotate), a prediction's
delivery log, and redelivery. Delivering is :mod:`genyard.services.webhook_dispatcher`."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from genyard.db import jobs_repo, webhooks_repo
from genyard.db.engine import Database
from genyard.domain.webhooks import ROTATION_GRACE_SECONDS, account_secret
from genyard.errors import Conflict, NotFound


class WebhookSecrets:
    """Per-account secrets derived from the server secret and a stored generation."""

    def __init__(self, db: Database, server_secret: str) -> None:
        self.db = db
        self._server_secret = server_secret

    def _secret(self, account_id: str, version: int) -> str:
        return account_secret(self._server_secret, account_id, version)

    async def current(self, account_id: str) -> str:
        async with self.db.read() as conn:
            version, _ = await webhooks_repo.secret_generation(conn, account_id)
        return self._secret(account_id, version)

    async def signing(self, account_id: str, now: float) -> list[str]:
        """The secrets a delivery is signed with: the current one, and the one before it
        for ``ROTATION_GRACE_SECONDS`` after a rotation."""
        async with self.db.read() as conn:
            version, rotated_at = await webhooks_repo.secret_generation(conn, account_id)
        secrets = [self._secret(account_id, version)]
        if rotated_at is not None and now - rotated_at < ROTATION_GRACE_SECONDS:
            secrets.append(self._secret(account_id, version - 1))
        return secrets

    async def rotate(self, account_id: str) -> tuple[str, float]:
        """Start a new generation; return its secret and until when the old one signs too."""
        now = time.time()
        for _ in range(2):  # a concurrent first rotation may win the insert
            try:
                async with self.db.write() as conn:
                    version = await webhooks_repo.rotate_secret(conn, account_id, now)
                return self._secret(account_id, version), now + ROTATION_GRACE_SECONDS
            except IntegrityError:
                continue
        raise Conflict("the webhook secret is being rotated by another request; try again")


class WebhookService:
    def __init__(self, db: Database, secrets: WebhookSecrets, wake: Callable[[], None]) -> None:
        self.db = db
        self.secrets = secrets
        self._wake = wake

    async def deliveries(self, prediction_id: str, account_id: str) -> list[webhooks_repo.Delivery]:
        async with self.db.read() as conn:
            if await jobs_repo.get_job(conn, prediction_id, account_id) is None:
                raise NotFound(f"no prediction with id {prediction_id!r}")
            return await webhooks_repo.list_for_prediction(conn, prediction_id, account_id)

    async def redeliver(
        self, prediction_id: str, delivery_id: str, account_id: str
    ) -> webhooks_repo.Delivery:
        """Send a delivered or failed delivery again: same id and body, fresh retries."""
        async with self.db.write() as conn:
            queued = await webhooks_repo.redeliver(
                conn, delivery_id, prediction_id, account_id, time.time()
            )
        found = {d.id: d for d in await self.deliveries(prediction_id, account_id)}
        if delivery_id not in found:
            raise NotFound(
                f"prediction {prediction_id} has no webhook delivery with id {delivery_id!r}"
            )
        if not queued:
            raise Conflict(
                f"webhook delivery {delivery_id} is still pending; it is sent already",
                {"status": found[delivery_id].status.value},
            )
        self._wake()
        return found[delivery_id]
