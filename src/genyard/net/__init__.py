"""Outbound networking: the URL guard every fetch or call on a user's behalf goes through."""

from genyard.net.addresses import ALLOWLIST_SETTING, Allowlist
from genyard.net.errors import FetchFailed, UrlRefused
from genyard.net.guard import (
    FetchedFile,
    PostResponse,
    ResolvedUrl,
    Resolver,
    UrlGuard,
    system_resolver,
)

__all__ = [
    "ALLOWLIST_SETTING",
    "Allowlist",
    "FetchFailed",
    "FetchedFile",
    "PostResponse",
    "ResolvedUrl",
    "Resolver",
    "UrlGuard",
    "UrlRefused",
    "system_resolver",
]
