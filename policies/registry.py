"""Registries of policies by name: one for planners, one for dispatchers.

Shape from vidur's BaseRegistry; like peft's register_peft_method, registering a name twice is an error, and asking
for an unknown name lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PolicyError(ValueError):
    """Bad input to a policy: an unknown name, an impossible plan, a sequence no replica can hold."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise PolicyError(
                    f"{self.kind} {name!r} is already registered (by {self._entries[name].__name__})"
                )
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            raise PolicyError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return list(self._entries)
