"""Shared helpers of the signing tests: the committed vector PKI and small builders."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing.keys import SoftwareSigner
from signing.revocation import CrlChecker
from signing.trust import TrustStore

VECTORS = Path(__file__).parents[1] / "vectors" / "signing"
PKI = VECTORS / "pki"
CORPUS = Path(__file__).parents[1] / "vectors" / "corpus"


@lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((VECTORS / "vectors.json").read_text(encoding="utf-8"))


def verify_at() -> dt.datetime:
    return dt.datetime.fromisoformat(manifest()["verify_at"])


def cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI / f"{name}.pem").read_bytes())


def signer(name: str = "moit") -> SoftwareSigner:
    key = serialization.load_pem_private_key((PKI / f"{name}.key.pem").read_bytes(), None)
    return SoftwareSigner(key, cert(name), [cert("issuing-ca")])  # type: ignore[arg-type]


def vector_trust(party: str = "moit") -> TrustStore:
    """The trust store the vectors are meant for: the vector root CA, with both CRLs."""
    return TrustStore(
        party,
        anchors=(cert("root-ca"),),
        revocation=CrlChecker.from_files([PKI / "issuing-ca.crl.pem", PKI / "root-ca.crl.pem"]),
        any_signer=True,
    )
