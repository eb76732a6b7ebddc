"""XML Encryption of MIME attachments (WSS SwA Profile 1.1), as the AS4 profiles use it.

Each attachment's content is encrypted with one fresh AES-128-GCM key
(``xenc11#aes128-gcm``: a 12-byte IV, the ciphertext and the 16-byte tag, in
that order, replace the MIME part's content, whose Content-Type becomes
``application/octet-stream``). The key is wrapped for the recipient's
certificate with RSA-OAEP (``xenc11#rsa-oaep`` with MGF1-SHA256 and a SHA-256
digest, as the eDelivery AS4 1.14 profile and the PyPI ``as4`` package use;
``xenc#rsa-oaep-mgf1p`` is accepted on reception, as older AS4 profiles use it)
in an ``xenc:EncryptedKey`` inside ``wsse:Security``, whose ``ReferenceList``
names one ``xenc:EncryptedData`` per attachment (``Type`` =
``Attachment-Content-Only``, ``CipherReference URI="cid:..."`` with the
``Attachment-Ciphertext-Transform``).

AES-GCM and OAEP come from ``cryptography``. Decryption needs our private key,
which sits behind the small :class:`Decrypter` interface (a software key here,
an HSM later), apart from the signing :class:`~signing.keys.Signer`.
"""

from __future__ import annotations

import abc
import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.errors import AlgorithmForbidden, ConfigError, DecryptionFailed, DuplicateId, KeyLoadFailed
from signing.algorithms import DS_NS, SHA1_DIGEST, SHA256_DIGEST, SHA384_DIGEST, SHA512_DIGEST
from signing.wss import BASE64_BINARY, WSSE11_NS, WSSE_NS, WSU_NS, X509V3, element_path, new_id, security_header

__all__ = [
    "XENC_NS",
    "XENC11_NS",
    "AES128_GCM",
    "AES256_GCM",
    "RSA_OAEP",
    "RSA_OAEP_MGF1P",
    "MGF1_SHA1",
    "MGF1_SHA256",
    "SWA_CONTENT_ONLY",
    "SWA_CIPHERTEXT_TRANSFORM",
    "ENCRYPTED_KEY_TOKEN",
    "Decrypter",
    "SoftwareDecrypter",
    "DecryptResult",
    "encrypt_attachments",
    "decrypt_attachments",
]

XENC_NS = "http://www.w3.org/2001/04/xmlenc#"
XENC11_NS = "http://www.w3.org/2009/xmlenc11#"
AES128_GCM = XENC11_NS + "aes128-gcm"
AES256_GCM = XENC11_NS + "aes256-gcm"
RSA_OAEP = XENC11_NS + "rsa-oaep"
RSA_OAEP_MGF1P = XENC_NS + "rsa-oaep-mgf1p"
MGF1_SHA1 = XENC11_NS + "mgf1sha1"
MGF1_SHA256 = XENC11_NS + "mgf1sha256"
SWA_CONTENT_ONLY = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only"
SWA_CIPHERTEXT_TRANSFORM = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform"
ENCRYPTED_KEY_TOKEN = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"

_X = f"{{{XENC_NS}}}"
_X11 = f"{{{XENC11_NS}}}"
_DS = f"{{{DS_NS}}}"
_WSSE = f"{{{WSSE_NS}}}"
_WSU_ID = f"{{{WSU_NS}}}Id"
_KEY_SIZES = {AES128_GCM: 16, AES256_GCM: 32}
_MGF_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    MGF1_SHA1: hashes.SHA1,
    MGF1_SHA256: hashes.SHA256,
    XENC11_NS + "mgf1sha384": hashes.SHA384,
    XENC11_NS + "mgf1sha512": hashes.SHA512,
}
_OAEP_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    SHA1_DIGEST.uri: hashes.SHA1,
    SHA256_DIGEST.uri: hashes.SHA256,
    SHA384_DIGEST.uri: hashes.SHA384,
    SHA512_DIGEST.uri: hashes.SHA512,
}
_NONCE = 12


class Decrypter(abc.ABC):
    """Our key-transport private key, behind an interface (software key, HSM)."""

    @property
    @abc.abstractmethod
    def certificate(self) -> x509.Certificate:
        """The certificate partners encrypt to."""

    @abc.abstractmethod
    def unwrap(self, wrapped: bytes, oaep: padding.OAEP) -> bytes:
        """The content-encryption key inside ``wrapped``; ``ValueError`` if it is not ours or altered."""


class SoftwareDecrypter(Decrypter):
    """An RSA private key held in memory."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyLoadFailed("RSA-OAEP key transport needs an RSA private key")
        if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise KeyLoadFailed(f"the private key does not belong to {certificate.subject.rfc4514_string()}")
        self._key = key
        self._certificate = certificate

    @classmethod
    def from_pem(
        cls, key_path: str | Path, cert_path: str | Path, *, password: bytes | None = None
    ) -> SoftwareDecrypter:
        try:
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=password)
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        except (ValueError, TypeError, UnsupportedAlgorithm, OSError) as exc:
            raise KeyLoadFailed(f"cannot load decryption key {key_path}: {exc}", field=str(key_path)) from exc
        return cls(key, cert)  # type: ignore[arg-type]

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def unwrap(self, wrapped: bytes, oaep: padding.OAEP) -> bytes:
        return self._key.decrypt(wrapped, oaep)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def encrypt_attachments(
    envelope: etree._Element,
    attachments: Mapping[str, tuple[bytes, str]],
    recipient: x509.Certificate,
    *,
    algorithm: str = AES128_GCM,
) -> dict[str, bytes]:
    """Encrypt each attachment (Content-ID -> (content, MIME type)) for ``recipient``; return Content-ID -> ciphertext.

    Adds the recipient's BinarySecurityToken, the EncryptedKey and one
    EncryptedData per attachment at the top of ``wsse:Security``. Sign first
    (AS4 signs the plaintext), then encrypt.
    """
    if algorithm not in _KEY_SIZES:
        raise ConfigError(f"unsupported content encryption {algorithm}", field="encryption.algorithm")
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ConfigError("RSA-OAEP key transport needs the partner's RSA certificate", field="encryption.certificate")
    security = security_header(envelope)
    assert security is not None
    key = AESGCM.generate_key(bit_length=8 * _KEY_SIZES[algorithm])
    aes = AESGCM(key)
    wrapped = public_key.encrypt(
        key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )

    bst_id, ek_id = new_id("X509-enc"), new_id("EK")
    bst = etree.Element(
        _WSSE + "BinarySecurityToken", {"EncodingType": BASE64_BINARY, "ValueType": X509V3, _WSU_ID: bst_id}
    )
    bst.text = _b64(recipient.public_bytes(Encoding.DER))
    ek = etree.Element(_X + "EncryptedKey", {"Id": ek_id}, nsmap={"xenc": XENC_NS})
    method = _sub(ek, _X + "EncryptionMethod", Algorithm=RSA_OAEP)
    _sub(method, _DS + "DigestMethod", Algorithm=SHA256_DIGEST.uri)
    etree.SubElement(method, _X11 + "MGF", {"Algorithm": MGF1_SHA256}, nsmap={"xenc11": XENC11_NS})
    key_info = _sub(ek, _DS + "KeyInfo")
    str_el = _sub(key_info, _WSSE + "SecurityTokenReference")
    _sub(str_el, _WSSE + "Reference", URI="#" + bst_id, ValueType=X509V3)
    _sub(_sub(ek, _X + "CipherData"), _X + "CipherValue", _b64(wrapped))
    reference_list = _sub(ek, _X + "ReferenceList")

    out: dict[str, bytes] = {}
    data_elements = []
    for cid, (content, mime_type) in attachments.items():
        ed_id = new_id("ED")
        _sub(reference_list, _X + "DataReference", URI="#" + ed_id)
        ed = etree.Element(
            _X + "EncryptedData",
            {"Id": ed_id, "Type": SWA_CONTENT_ONLY, "MimeType": mime_type},
            nsmap={"xenc": XENC_NS},
        )
        _sub(ed, _X + "EncryptionMethod", Algorithm=algorithm)
        ed_key_info = _sub(ed, _DS + "KeyInfo")
        ed_str = _sub(ed_key_info, _WSSE + "SecurityTokenReference")
        ed_str.set(f"{{{WSSE11_NS}}}TokenType", ENCRYPTED_KEY_TOKEN)
        _sub(ed_str, _WSSE + "Reference", URI="#" + ek_id)
        cipher_ref = _sub(_sub(ed, _X + "CipherData"), _X + "CipherReference", URI="cid:" + cid)
        _sub(_sub(cipher_ref, _X + "Transforms"), _DS + "Transform", Algorithm=SWA_CIPHERTEXT_TRANSFORM)
        data_elements.append(ed)
        nonce = os.urandom(_NONCE)
        out[cid] = nonce + aes.encrypt(nonce, content, None)
    for offset, el in enumerate([bst, ek, *data_elements]):
        security.insert(offset, el)
    return out


@dataclass(frozen=True)
class DecryptResult:
    """The attachments as signed: decrypted where they were encrypted, unchanged otherwise."""

    attachments: dict[str, bytes]
    encrypted: frozenset[str]
    """The Content-IDs that arrived encrypted."""
    mime_types: dict[str, str]
    """Content-ID -> the original MIME type declared by EncryptedData/@MimeType."""


def _oaep(method: etree._Element) -> padding.OAEP:
    where = element_path(method)
    algorithm = method.get("Algorithm")
    digest_el = method.find(_DS + "DigestMethod")
    digest_uri = digest_el.get("Algorithm") if digest_el is not None else SHA1_DIGEST.uri
    digest = _OAEP_DIGESTS.get(digest_uri or "")
    if digest is None:
        raise AlgorithmForbidden(f"OAEP digest {digest_uri} is not accepted", field=where + "/ds:DigestMethod")
    if algorithm == RSA_OAEP:
        mgf_el = method.find(_X11 + "MGF")
        mgf_uri = mgf_el.get("Algorithm") if mgf_el is not None else MGF1_SHA1
        mgf = _MGF_HASHES.get(mgf_uri or "")
        if mgf is None:
            raise AlgorithmForbidden(f"mask generation {mgf_uri} is not accepted", field=where + "/xenc11:MGF")
    elif algorithm == RSA_OAEP_MGF1P:
        mgf = hashes.SHA1
    else:
        raise AlgorithmForbidden(f"key transport {algorithm} is not accepted (RSA-OAEP only)", field=where)
    if method.find(_X + "OAEPparams") is not None:
        raise AlgorithmForbidden("OAEPparams (a non-empty label) are not accepted", field=where + "/xenc:OAEPparams")
    return padding.OAEP(mgf=padding.MGF1(mgf()), algorithm=digest(), label=None)


def _recipient(ek: etree._Element, security: etree._Element) -> x509.Certificate | None:
    ref = ek.find(f"{_DS}KeyInfo/{_WSSE}SecurityTokenReference/{_WSSE}Reference")
    if ref is None or not (ref.get("URI") or "").startswith("#"):
        return None
    for token in security.findall(_WSSE + "BinarySecurityToken"):
        if token.get(_WSU_ID) == ref.get("URI", "")[1:]:
            try:
                return x509.load_der_x509_certificate(base64.b64decode("".join((token.text or "").split())))
            except (ValueError, binascii.Error):
                raise DecryptionFailed(
                    "the EncryptedKey's token is not a certificate", field=element_path(token)
                ) from None
    return None


def decrypt_attachments(
    envelope: etree._Element,
    attachments: Mapping[str, bytes],
    decrypter: Decrypter | None,
) -> DecryptResult:
    """Decrypt every attachment the envelope's EncryptedKey lists; the others pass through unchanged."""
    security = security_header(envelope, create=False)
    keys = security.findall(_X + "EncryptedKey") if security is not None else []
    out = dict(attachments)
    if not keys:
        return DecryptResult(out, frozenset(), {})
    assert security is not None
    if len(keys) > 1:
        raise DecryptionFailed(
            f"wsse:Security holds {len(keys)} EncryptedKey elements; one is accepted", field=element_path(keys[1])
        )
    ek = keys[0]
    where = element_path(ek)
    if decrypter is None:
        raise DecryptionFailed("the message is encrypted but no decryption key is configured", field=where)
    method = ek.find(_X + "EncryptionMethod")
    if method is None:
        raise DecryptionFailed("EncryptedKey has no EncryptionMethod", field=where)
    oaep = _oaep(method)
    recipient = _recipient(ek, security)
    if recipient is not None and recipient != decrypter.certificate:
        raise DecryptionFailed(
            f"the key is wrapped for {recipient.subject.rfc4514_string()}, not for our certificate "
            f"{decrypter.certificate.subject.rfc4514_string()}",
            field=where + "/ds:KeyInfo",
        )
    value = ek.find(f"{_X}CipherData/{_X}CipherValue")
    if value is None:
        raise DecryptionFailed("EncryptedKey has no CipherValue", field=where + "/xenc:CipherData")
    try:
        key = decrypter.unwrap(base64.b64decode("".join((value.text or "").split()), validate=True), oaep)
    except (ValueError, binascii.Error) as exc:
        raise DecryptionFailed(
            f"the content key cannot be unwrapped with our key: {exc or 'OAEP decoding error'}",
            field=where + "/xenc:CipherData",
        ) from exc

    encrypted: set[str] = set()
    mime_types: dict[str, str] = {}
    data_by_id: dict[str, list[etree._Element]] = {}
    for ed in security.findall(_X + "EncryptedData"):
        data_by_id.setdefault(ed.get("Id") or "", []).append(ed)
    for data_ref in ek.findall(f"{_X}ReferenceList/{_X}DataReference"):
        uri = data_ref.get("URI") or ""
        found = data_by_id.get(uri[1:], []) if uri.startswith("#") else []
        if len(found) != 1:
            cls = DuplicateId if len(found) > 1 else DecryptionFailed
            raise cls(
                f"{len(found)} xenc:EncryptedData carry Id {uri[1:]!r}; exactly one is required",
                field=element_path(data_ref),
            )
        ed = found[0]
        ed_where = element_path(ed)
        algorithm_el = ed.find(_X + "EncryptionMethod")
        algorithm = algorithm_el.get("Algorithm") if algorithm_el is not None else None
        if algorithm not in _KEY_SIZES:
            raise AlgorithmForbidden(
                f"content encryption {algorithm} is not accepted (AES-GCM only)",
                field=ed_where + "/xenc:EncryptionMethod",
            )
        if len(key) != _KEY_SIZES[algorithm]:
            raise DecryptionFailed(
                f"the unwrapped key has {len(key)} bytes, {algorithm} needs {_KEY_SIZES[algorithm]}", field=ed_where
            )
        cipher_ref = ed.find(f"{_X}CipherData/{_X}CipherReference")
        cid_uri = cipher_ref.get("URI") if cipher_ref is not None else None
        if not cid_uri or not cid_uri.startswith("cid:"):
            raise DecryptionFailed(
                "EncryptedData must reference its attachment with CipherReference URI='cid:...'",
                field=ed_where + "/xenc:CipherData",
            )
        cid = cid_uri[4:]
        if cid not in attachments:
            raise DecryptionFailed(f"no MIME attachment has Content-ID <{cid}>", field=cid_uri)
        if cid in encrypted:
            raise DuplicateId(f"attachment {cid_uri} is decrypted twice", field=ed_where)
        blob = attachments[cid]
        try:
            out[cid] = AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], None)
        except (InvalidTag, ValueError) as exc:
            raise DecryptionFailed(
                f"attachment {cid_uri} does not decrypt (altered ciphertext or wrong key)", field=cid_uri
            ) from exc
        encrypted.add(cid)
        if ed.get("MimeType"):
            mime_types[cid] = ed.get("MimeType", "")
    return DecryptResult(out, frozenset(encrypted), mime_types)
