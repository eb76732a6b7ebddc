"""The kit's certificates: one valid signer and one of every kind a party must refuse.

``nswgw conformance pki DIR`` (:func:`prepare_pki`) makes a development PKI
(``signing.dev.pki.init_dev_pki``) holding, besides the parties named:

* ``conformance``: the kit's valid signing certificate;
* ``conformance-expired``: expired a year ago;
* ``conformance-revoked``: revoked (listed in ``crl.pem`` and ``index.txt``);
* ``conformance-wrong-usage``: keyUsage keyEncipherment only, extendedKeyUsage serverAuth;
* ``conformance-another-partner``: valid, from the same CA, but another subject: another partner's, which
  must not sign for the kit's party;
* ``intruder/``: a second, unrelated PKI whose ``conformance`` certificate has the
  same subject as the valid one but chains to another root.

The party under test anchors ``DIR/root-ca.pem`` for the kit's party, bound to the kit's certificates (their
subject CN ``conformance``: the valid, expired, revoked and wrong-usage ones share it), and reads
``DIR/crl.pem``. :func:`open_pki` reopens the directory as a :class:`KitPki`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError
from signing.dev.pki import DevPki, init_dev_pki
from signing.keys import SoftwareSigner

__all__ = [
    "KitPki",
    "prepare_pki",
    "open_pki",
    "KIT_SIGNER",
    "EXPIRED",
    "REVOKED",
    "WRONG_USAGE",
    "ANOTHER_PARTNER",
    "INTRUDER_DIR",
]

KIT_SIGNER = "conformance"
EXPIRED = "conformance-expired"
REVOKED = "conformance-revoked"
WRONG_USAGE = "conformance-wrong-usage"
ANOTHER_PARTNER = "conformance-another-partner"
INTRUDER_DIR = "intruder"


def prepare_pki(
    directory: str | Path,
    parties: tuple[str, ...] = ("nsw-gateway",),
    *,
    key_kind: str = "rsa2048",
    force: bool = False,
) -> KitPki:
    """Create the kit's PKI in ``directory`` (see the module docstring)."""
    path = Path(directory)
    names = (KIT_SIGNER, *(p for p in parties if p != KIT_SIGNER))
    pki = init_dev_pki(path, names, key_kind=key_kind, force=force)
    now = dt.datetime.now(dt.UTC)
    key = pki.party(KIT_SIGNER).key
    pki.issue(
        EXPIRED,
        key=key,
        common_name=KIT_SIGNER,
        not_before=now - dt.timedelta(days=730),
        not_after=now - dt.timedelta(days=365),
    )
    pki.issue(REVOKED, key=key, common_name=KIT_SIGNER)
    pki.revoke(REVOKED, "key_compromise", at=now - dt.timedelta(hours=1))
    pki.issue(
        WRONG_USAGE, key=key, common_name=KIT_SIGNER, key_usage={"key_encipherment"}, extended_key_usage=["server_auth"]
    )
    pki.issue(ANOTHER_PARTNER)
    init_dev_pki(path / INTRUDER_DIR, (KIT_SIGNER,), key_kind=key_kind, force=force)
    return open_pki(path)


@dataclass(frozen=True)
class KitPki:
    """The kit's PKI, opened."""

    pki: DevPki
    intruder: DevPki

    @property
    def directory(self) -> Path:
        return self.pki.directory

    def signer(self, name: str = KIT_SIGNER) -> SoftwareSigner:
        """A signer for a certificate of the kit's PKI (chain: the issuing CA)."""
        issued = self.pki.party(name)
        return SoftwareSigner(issued.key, issued.cert, [self.pki.issuing_cert])

    def intruder_signer(self) -> SoftwareSigner:
        """The impostor: same subject as the kit's signer, another CA."""
        issued = self.intruder.party(KIT_SIGNER)
        return SoftwareSigner(issued.key, issued.cert, [self.intruder.issuing_cert])


def open_pki(directory: str | Path) -> KitPki:
    """Reopen a PKI made by :func:`prepare_pki`; CONFIG_INVALID when it is not one."""
    path = Path(directory)
    pki = DevPki.open(path)
    missing = [n for n in (KIT_SIGNER, EXPIRED, REVOKED, WRONG_USAGE) if n not in pki.names]
    if missing:
        raise ConfigError(
            f"{path} lacks the kit's certificates {missing}; run 'nswgw conformance pki {path}'", field="pki"
        )
    return KitPki(pki, DevPki.open(path / INTRUDER_DIR))
