"""The error tree's contract, and the libxml2 start-up guard."""

from __future__ import annotations

from pathlib import Path

import pytest

import gateway.errors as errors
from gateway.errors import (
    ERROR_CODES,
    ClientError,
    LibraryMismatch,
    NswError,
    Origin,
    ValidationFailed,
    ValidationIssue,
)
from signing._compat import check_libxml2_versions, libxml2_versions


def test_every_code_is_unique_upper_snake_and_documented():
    assert len(ERROR_CODES) >= 40
    for code, cls in ERROR_CODES.items():
        assert code == cls.code and code.isupper() and " " not in code
        assert cls.__doc__ and cls.__doc__.strip(), cls
        assert cls.__name__ in errors.__all__


def test_bad_input_errors_are_value_errors_and_carry_an_incident_id():
    for cls in ERROR_CODES.values():
        if issubclass(cls, ClientError):
            assert issubclass(cls, ValueError), cls
            assert cls.origin is Origin.CLIENT
    a, b = errors.DigestMismatch("x", field="/a"), errors.DigestMismatch("x", field="/a")
    assert a.incident_id != b.incident_id and len(a.incident_id) == 16
    assert a.to_dict() == {
        "code": "SIG_DIGEST_MISMATCH",
        "message": "x",
        "origin": "client",
        "incident_id": a.incident_id,
        "field": "/a",
    }
    assert str(a) == "[SIG_DIGEST_MISMATCH] at /a: x"


def test_origin_can_be_set_per_incident():
    err = errors.SignatureValueInvalid("receipt signature invalid", origin=Origin.PARTNER)
    assert err.origin is Origin.PARTNER and err.to_dict()["origin"] == "partner"
    assert errors.SignatureValueInvalid("x").origin is Origin.CLIENT


def test_validation_failed_lists_every_issue():
    err = ValidationFailed(
        [
            ValidationIssue("goods[3].hs_code", "HS_CODE_FORMAT", "6 to 10 digits"),
            ValidationIssue("invoice_date", "REQUIRED", "missing"),
        ]
    )
    body = err.to_dict()
    assert body["code"] == "VALIDATION_FAILED" and body["field"] == "goods[3].hs_code"
    assert [i["code"] for i in body["issues"]] == ["HS_CODE_FORMAT", "REQUIRED"]


def test_a_duplicate_code_cannot_be_defined():
    with pytest.raises(TypeError):
        type("Twin", (NswError,), {"code": "SIG_DIGEST_MISMATCH"})


def test_error_reference_in_docs_is_current():
    doc = (Path(__file__).parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    assert errors.error_table_markdown() in doc, "regenerate: python -m gateway.errors (see docs/errors.md)"


def test_libxml2_guard_passes_on_this_install_and_refuses_a_mismatch():
    check_libxml2_versions()
    versions = libxml2_versions()
    assert len(set(versions.values())) == 1
    broken = dict(versions, xmlsec_runtime=(2, 9, 14))
    with pytest.raises(LibraryMismatch) as info:
        check_libxml2_versions(broken)
    assert info.value.code == "LIBXML2_MISMATCH"
    assert "xmlsec_runtime=2.9.14" in info.value.message
