"""The provider registry, fed by the ``genyard.providers`` entry point group.

Built-ins register there too (pyproject.toml), exactly as a plug-in package would:

    [project.entry-points."genyard.providers"]
    myengine = "my_package.provider:MyProvider"

The entry's name is what a catalog entry's ``provider`` field refers to. Providers are
built lazily (once, on first use) with no arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from genyard.domain.catalog import ModelEntry
from genyard.providers.base import Availability, ModelAvailabilityProvider, Provider

ENTRY_POINT_GROUP = "genyard.providers"
log = logging.getLogger(__name__)


def _builder(ep: EntryPoint) -> Callable[[], Provider]:
    def build() -> Provider:
        provider: Provider = ep.load()()
        return provider

    return build


class ProviderRegistry:
    def __init__(self, factories: dict[str, Callable[[], Provider]] | None = None) -> None:
        self._factories: dict[str, Callable[[], Provider]] = dict(factories or {})
        self._instances: dict[str, Provider] = {}
        self._broken: dict[str, Availability] = {}

    @classmethod
    def from_entry_points(cls) -> ProviderRegistry:
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            registry._factories[ep.name] = _builder(ep)
        return registry

    def get(self, name: str) -> Provider | None:
        """The provider instance, or None when unknown or it failed to load."""
        if name in self._instances:
            return self._instances[name]
        if name in self._broken or name not in self._factories:
            return None
        try:
            provider = self._factories[name]()
        except Exception as exc:
            log.exception("provider %s failed to load", name)
            self._broken[name] = Availability(
                False, f"provider {name!r} failed to load: {exc}", "see the server log"
            )
            return None
        self._instances[name] = provider
        return provider

    def availability(self, name: str, model: ModelEntry | None = None) -> Availability:
        """Whether provider ``name`` can run here; with ``model``, that model (a provider
        may answer per model: :class:`ModelAvailabilityProvider`)."""
        provider = self.get(name)
        if provider is None:
            return self._broken.get(
                name,
                Availability(
                    False,
                    f"no provider named {name!r} is installed",
                    f"install a package registering {name!r} under '{ENTRY_POINT_GROUP}'",
                ),
            )
        if model is not None and isinstance(provider, ModelAvailabilityProvider):
            return provider.model_availability(model)
        return provider.availability()
