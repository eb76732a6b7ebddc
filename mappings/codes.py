"""Code lists and format checks used by validation.

* ISO 3166-1 alpha-2 countries and ISO 4217 currencies come from ``pycountry`` (the Debian iso-codes
  data, kept current upstream).
* UN/ECE Recommendation 20 units come from ``data/rec20_units.json`` (a subset; see its ``source``).
* UN/LOCODE and HS codes are checked for format only (no list of locations or tariff lines is shipped).

Each check is a pure function ``(value) -> bool``; :data:`CODE_LISTS` maps the ``code_list`` name used in
model field metadata to its check and the issue code reported when the check fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pycountry

__all__ = [
    "CodeList",
    "CODE_LISTS",
    "is_country",
    "is_currency",
    "is_unit",
    "is_locode",
    "is_hs_code",
    "rec20_units",
]

_LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
_HS = re.compile(r"^[0-9]{6,10}$")


@cache
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


@cache
def rec20_units() -> dict[str, str]:
    """The shipped UN/ECE Rec 20 unit codes and their names."""
    text = (Path(__file__).resolve().parent / "data" / "rec20_units.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["codes"])


def is_country(value: str) -> bool:
    """An ISO 3166-1 alpha-2 code (upper case)."""
    return value in _countries()


def is_currency(value: str) -> bool:
    """An ISO 4217 alphabetic currency code (upper case)."""
    return value in _currencies()


def is_unit(value: str) -> bool:
    """A UN/ECE Rec 20 unit code from the shipped list."""
    return value in rec20_units()


def is_locode(value: str) -> bool:
    """A UN/LOCODE: ISO 3166 country + 3 characters from A-Z and 2-9 (format only, plus the country)."""
    return bool(_LOCODE.match(value)) and is_country(value[:2])


def is_hs_code(value: str) -> bool:
    """An HS tariff code: 6 to 10 digits, no dots or spaces."""
    return bool(_HS.match(value))


@dataclass(frozen=True)
class CodeList:
    """A named code list: its check, the issue code on failure, and a human description."""

    name: str
    check: Callable[[str], bool]
    issue_code: str
    description: str


CODE_LISTS: dict[str, CodeList] = {
    c.name: c
    for c in (
        CodeList("ISO3166", is_country, "COUNTRY_UNKNOWN", "ISO 3166-1 alpha-2 country code"),
        CodeList("ISO4217", is_currency, "CURRENCY_UNKNOWN", "ISO 4217 currency code"),
        CodeList("REC20", is_unit, "UNIT_UNKNOWN", "UN/ECE Recommendation 20 unit code"),
        CodeList("UNLOCODE", is_locode, "LOCODE_INVALID", "UN/LOCODE: 2-letter country + 3 characters [A-Z2-9]"),
        CodeList("HS", is_hs_code, "HS_CODE_INVALID", "HS code: 6 to 10 digits"),
    )
}
"""Code lists by the name used in field metadata (``json_schema_extra["code_list"]``)."""
