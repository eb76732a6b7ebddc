"""The harmonized data-element set (WCO Data Model ids) and mappings to and from native formats.

"Submit once, use many times": every message is read into one :class:`TradeMessage` and written from it
to each destination's format::

    from mappings import get_format, validate

    msg = get_format("vnsw").parse(xml_bytes)      # -> TradeMessage (ValidationFailed / XmlError on bad input)
    issues = validate(msg)                          # -> [ValidationIssue(path, code, message), ...]
    out = get_format("form-d").emit(msg)            # -> bytes, valid against the format's XSD

Registered formats: ``json``, ``vnsw``, ``form-d``, ``sps``, ``acdd`` (see :mod:`mappings.registry`).
"""

from mappings.model import TradeMessage
from mappings.registry import MessageFormat, convert, names, register
from mappings.registry import get as get_format
from mappings.rules import ISSUE_CODES, check, validate

__all__ = [
    "TradeMessage",
    "MessageFormat",
    "get_format",
    "names",
    "register",
    "convert",
    "validate",
    "check",
    "ISSUE_CODES",
]
