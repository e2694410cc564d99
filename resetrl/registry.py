"""One registry per kind of plug-in (methods, layouts, localizers, tasks, advantage estimators, losses,
backends, ...)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from resetrl.errors import ResetRLError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to plug-ins of one kind; an unknown name is an error that lists the known ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ResetRLError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
