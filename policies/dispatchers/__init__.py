"""Dispatchers, registered by name: uniform, length, balanced, balanced-ilp."""

from lobra.policies.dispatchers import balanced, simple  # noqa: F401  (registration)
from lobra.policies.dispatchers.base import DISPATCHERS, Dispatcher, DispatcherConfig

__all__ = ["DISPATCHERS", "Dispatcher", "DispatcherConfig", "get_dispatcher"]


def get_dispatcher(name: str, **config) -> Dispatcher:
    return DISPATCHERS.create(name, **config)
