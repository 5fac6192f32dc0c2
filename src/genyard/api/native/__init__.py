"""The native face: /v1/predictions, /v1/models, /v1/account, /v1/keys."""

from fastapi import APIRouter

from genyard.api.native import account, models, predictions, stream


def router() -> APIRouter:
    root = APIRouter(prefix="/v1")
    root.include_router(predictions.router)
    root.include_router(stream.router)
    root.include_router(models.router)
    root.include_router(account.router)
    return root
