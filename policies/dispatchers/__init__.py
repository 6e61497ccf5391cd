"""Dispatchers, registered by name: uniform, length, balanced, balanced-ilp."""

from policies.dispatchers import balanced, simple  # noqa: F401  (registration)
from policies.dispatchers.base import DISPATCHERS, Dispatcher, DispatcherConfig

__all__ = ["DISPATCHERS", "Dispatcher", "DispatcherConfig", "get_dispatcher"]


def get_dispatcher(name: str, **config) -> Dispatcher:
    return DISPATCHERS.create(name, **config)
