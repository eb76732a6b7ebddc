"""The AS4 fixtures of tests/helpers/as4.py: the sides ``gateway`` and ``partner`` (a module that defines its own
fixture of either name uses that one) and ``p12_password``."""

from __future__ import annotations

from helpers.as4 import gateway, p12_password, partner

__all__ = ["gateway", "p12_password", "partner"]
