"""The NSW interoperability gateway: broker core (intake, journal, routing, delivery, receipts, API, CLI)."""

__version__ = "0.1.0"
