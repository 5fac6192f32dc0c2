"""Event bus: a doorbell that says "look again"; state is always read back from tables."""

from genyard.events.base import EventBus
from genyard.events.memory import InProcessEventBus

__all__ = ["EventBus", "InProcessEventBus"]
