"""Every file of tests/vectors/signing/ verified under its scenario; each attack with its exact code."""

from __future__ import annotations

import pytest

from gateway.errors import NswError
from helpers.signing import VECTORS, manifest, vector_trust, verify_at
from signing.policy import VerifyPolicy
from signing.verify import verify_document

VECTOR_NAMES = sorted(manifest()["vectors"])


def test_vector_folder_and_manifest_list_the_same_files():
    on_disk = {p.name for p in VECTORS.glob("*.xml")}
    assert on_disk == set(VECTOR_NAMES)
    assert len(VECTOR_NAMES) >= 25


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_signing_vector(name: str) -> None:
    spec = manifest()["vectors"][name]
    policy = VerifyPolicy(allow_sha1=bool(spec.get("allow_sha1", False)))
    data = (VECTORS / name).read_bytes()
    kwargs = dict(
        trust=vector_trust(),
        policy=policy,
        at=verify_at(),
        expect=spec.get("expect"),
        namespaces=spec.get("namespaces"),
    )
    if spec["expect_code"] is None:
        result = verify_document(data, **kwargs)
        assert result.certificate.subject.rfc4514_string().startswith("CN=Vector moit,")
        assert len(result.chain) == 3  # signer, issuing CA, root CA
    else:
        with pytest.raises(NswError) as info:
            verify_document(data, **kwargs)
        assert info.value.code == spec["expect_code"], info.value
        assert isinstance(info.value, ValueError)  # every rejection of input is a bad-input error
