"""Dispatchers, registered by name: uniform, length, balanced, balanced-ilp, fixed-mbs."""

from lobra.policies.dispatchers import balanced, fixed_mbs, simple  # noqa: F401  (registration)
from lobra.policies.dispatchers.base import DISPATCHERS, Dispatcher
from lobra.policies.dispatchers.config import FIXED_MBS, DispatcherConfig, dispatch_from_args

__all__ = [
    "DISPATCHERS",
    "FIXED_MBS",
    "Dispatcher",
    "DispatcherConfig",
    "dispatch_from_args",
    "get_dispatcher",
]


def get_dispatcher(name: str, config: DispatcherConfig | None = None, **overrides) -> Dispatcher:
    """The dispatcher `name` with these settings (and any overrides of single fields)."""
    return DISPATCHERS.create(name, config=config, **overrides)
