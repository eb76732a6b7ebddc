"""The console's pages: each module defines ``LABELS`` (its labels, ``key -> (English, Vietnamese)``) and
``routes(console) -> list[web.RouteDef]`` (its routes, each handler wrapped by :meth:`Console.page`)."""

from __future__ import annotations

from types import ModuleType

from gateway.console.pages import (
    certificates,
    dead_letters,
    disclosures,
    messages,
    origin,
    overview,
    partners,
    procedures,
    reference,
)

__all__ = ["MODULES"]

MODULES: tuple[ModuleType, ...] = (
    overview,
    messages,
    dead_letters,
    partners,
    procedures,
    origin,
    reference,
    disclosures,
    certificates,
)
"""The page modules, in navigation order."""
