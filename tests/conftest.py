"""Shared fixtures: the development PKI and the real OCSP responder (tests/ocsp_fixtures.py)."""

pytest_plugins = ["ocsp_fixtures"]
