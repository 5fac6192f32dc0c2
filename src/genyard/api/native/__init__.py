"""The native face: /v1/predictions (and /upload), /v1/estimate, /v1/models, /v1/account,
/v1/keys, /v1/webhooks, /v1/credits, /v1/usage."""

from fastapi import APIRouter

from genyard.api.native import (
    account,
    credits,
    estimate,
    models,
    predictions,
    stream,
    upload,
    usage,
    webhooks,
)


def router() -> APIRouter:
    # Full paths live on each route (no router prefix), so a route's ``path`` is the
    # template that metrics and logs show.
    root = APIRouter()
    root.include_router(upload.router)
    root.include_router(predictions.router)
    root.include_router(estimate.router)
    root.include_router(stream.router)
    root.include_router(models.router)
    root.include_router(account.router)
    root.include_router(webhooks.router)
    root.include_router(credits.router)
    root.include_router(usage.router)
    return root
