"""One registry per kind of plug-in (methods, layouts, localizers, tasks, advantage estimators, losses,
backends, ...)."""

from __future__ import annotations

from importlib import import_module
from typing import Callable, Generic, TypeVar

from resetrl.errors import ResetRLError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to plug-ins of one kind; an unknown name is an error that lists the known ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> the module that registers it, imported on first get

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            self._declared.pop(name, None)
            return entry

        return decorator

    def declare(self, name: str, module: str) -> None:
        """`name` is registered by `module`, imported on the first `get(name)`: a config can name a
        heavy plug-in (one that imports torch) and be checked without loading it."""
        self._declared[name] = module

    def get(self, name: str) -> T:
        if name in self._declared:
            import_module(self._declared[name])
        if name not in self._entries:
            raise ResetRLError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
                               + did_you_mean(name, self.names()))
        return self._entries[name]

    def check(self, name: str) -> str:
        """`name` if it is registered or declared, without importing a declared entry's module."""
        if name not in self:
            self.get(name)  # raises, listing the known names
        return name

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._declared})

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._declared


def did_you_mean(name: str, known) -> str:
    """" (did you mean 'x'?)" for the closest known name to a mistyped one, else ""."""
    from difflib import get_close_matches

    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
