"""Field projection: the part of a harmonized message a recipient may see (data minimisation).

A recipient that is entitled to some data elements only (an agency receiving documents of a procedure it is not
part of, the border guard's part of a ship call) is configured with the harmonized paths it may see. What it
receives is :func:`project` of the message: those elements, nothing else, written in its own format.

Paths
-----
* Dotted attribute names of :class:`~mappings.model.TradeMessage`: ``permit.number``, ``parties.importer.name``.
* A list is projected element by element, without an index: ``goods.hs_code`` keeps the HS code of every goods
  item; ``goods`` keeps the items whole.
* A path that ends at a model keeps it whole; one that goes into a model keeps only the named parts, plus the
  parts the model cannot exist without (a :class:`~mappings.model.Quantity`'s unit beside its value).
* An unknown path is refused when the configuration is loaded (:func:`path_errors`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel

from mappings.model import TradeMessage

__all__ = ["Selection", "path_errors", "present", "project", "selection"]

Selection = Mapping[str, "Selection | None"]
"""A compiled set of paths: field name → the selection below it, or ``None`` for the whole value."""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model type a field holds (itself, optional, or the items of a tuple), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def path_errors(paths: Iterable[str], model: type[BaseModel] = TradeMessage) -> list[str]:
    """What is wrong with each of ``paths`` (empty when every one names a harmonized data element), with the
    closest known name."""
    from gateway.ports import did_you_mean

    errors: list[str] = []
    for path in paths:
        current: type[BaseModel] | None = model
        walked: list[str] = []
        for name in path.split("."):
            if current is None:
                errors.append(f"{path!r}: {'.'.join(walked)} is a value, it has no part {name!r}")
                break
            field = current.model_fields.get(name)
            if field is None:
                where = ".".join(walked) or current.__name__
                errors.append(
                    f"{path!r}: {where} has no field {name!r}{did_you_mean(name, current.model_fields, 'field')}"
                )
                break
            walked.append(name)
            current = _model_of(field.annotation)
    return errors


def selection(paths: Iterable[str]) -> Selection:
    """``paths`` compiled into a tree (a path under one that is kept whole adds nothing)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=lambda p: p.count(".")):
        node: dict[str, Any] | None = tree
        parts = path.split(".")
        for i, name in enumerate(parts):
            assert node is not None
            if name in node and node[name] is None:
                break  # kept whole already
            if i == len(parts) - 1:
                node[name] = None
            else:
                node = node.setdefault(name, {})
    return tree


def _project(model: BaseModel, sel: Selection) -> BaseModel:
    kept: dict[str, Any] = {}
    fields = type(model).model_fields
    for name, field in fields.items():
        if field.is_required() and name not in sel:
            kept[name] = getattr(model, name)  # the part the model cannot exist without
    for name, below in sel.items():
        value = getattr(model, name)
        if below is None or value is None:
            kept[name] = value
        elif isinstance(value, BaseModel):
            kept[name] = _project(value, below)
        elif isinstance(value, tuple):
            kept[name] = tuple(_project(v, below) if isinstance(v, BaseModel) else v for v in value)
        else:
            kept[name] = value
    return type(model).model_validate(kept)


def project(msg: TradeMessage, paths: Sequence[str] | Selection) -> TradeMessage:
    """``msg`` with only the data elements at ``paths`` (every other one at its default: absent)."""
    sel = paths if isinstance(paths, Mapping) else selection(paths)
    projected = _project(msg, sel)
    assert isinstance(projected, TradeMessage)
    return projected


def present(msg: TradeMessage, paths: Sequence[str]) -> tuple[str, ...]:
    """Those of ``paths`` that carry a value in ``msg`` (a list counts when one of its items does): what a
    projection of ``msg`` actually discloses, for the record of the disclosure."""

    def has(value: Any, parts: list[str]) -> bool:
        if value is None or value == () or value == "":
            return False
        if not parts:
            return not isinstance(value, BaseModel) or bool(value.model_dump(exclude_defaults=True))
        if isinstance(value, tuple):
            return any(has(v, parts) for v in value)
        if isinstance(value, BaseModel):
            return has(getattr(value, parts[0]), parts[1:])
        return False

    return tuple(p for p in paths if has(msg, p.split(".")))
