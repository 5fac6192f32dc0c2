"""Errors of the outbound URL guard."""

from __future__ import annotations


class UrlRefused(ValueError):
    """A URL the guard will not fetch: its reason names the setting that would allow it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


class FetchFailed(Exception):
    """A permitted URL that could not be fetched: network error, size or time limit."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
