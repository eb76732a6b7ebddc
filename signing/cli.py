"""``nswgw sign`` and ``nswgw verify`` (``nswgw bench signing`` lives in :mod:`signing.dev.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from gateway.cli import read_input, write_output
from gateway.errors import ConfigError, SignatureError
from signing.algorithms import C14N_EXCLUSIVE, C14N_INCLUSIVE, DIGESTS, SIGNATURES
from signing.identity import SignerIdentity, SignerRule, attribute_oid
from signing.keys import Signer, SoftwareSigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.revocation import CrlChecker, FirstAvailable, NoRevocationCheck, OcspChecker, RevocationChecker
from signing.trust import TrustStore

__all__ = ["register"]

_SIGNATURE_NAMES = {uri.rsplit("#", 1)[1]: uri for uri in SIGNATURES}
_DIGEST_NAMES = {uri.rsplit("#", 1)[1]: uri for uri in DIGESTS}


def _password(args: argparse.Namespace) -> bytes | None:
    import os

    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise ConfigError(f"environment variable {args.password_env} is not set", field="--password-env")
        return value.encode()
    return args.password.encode() if args.password is not None else None


def _signer(args: argparse.Namespace) -> Signer:
    if args.p12:
        return SoftwareSigner.from_pkcs12(args.p12, _password(args))
    if args.key and args.cert:
        return SoftwareSigner.from_pem(args.key, args.cert, password=_password(args), chain_path=args.chain)
    raise ConfigError("give --p12 FILE, or --key KEY.pem with --cert CERT.pem", field="--p12")


def _cmd_sign(args: argparse.Namespace) -> int:
    if args.profile == "vnsw-legacy":
        profile = SigningProfile.vnsw_legacy(allow_sha1=args.allow_sha1)
    else:
        profile = SigningProfile(
            c14n=C14N_INCLUSIVE if args.c14n == "inclusive" else C14N_EXCLUSIVE,
            signature_method=_SIGNATURE_NAMES[args.algorithm] if args.algorithm else None,
            digest_method=_DIGEST_NAMES[args.digest],
            allow_sha1=args.allow_sha1,
        )
    from signing.sign import sign_document

    write_output(
        args.output, sign_document(read_input(args.input), _signer(args), profile, reference_id=args.reference_id)
    )
    return 0


def _revocation(args: argparse.Namespace) -> RevocationChecker:
    checkers: list[RevocationChecker] = []
    if args.ocsp is not None:
        checkers.append(OcspChecker(responder_url=args.ocsp or None))
    if args.crl:
        checkers.append(CrlChecker.from_files(args.crl))
    if not checkers:
        return NoRevocationCheck()
    return checkers[0] if len(checkers) == 1 else FirstAvailable(checkers)


def _cmd_verify(args: argparse.Namespace) -> int:
    from signing.verify import verify_document

    if not args.anchor and not args.pin:
        raise ConfigError("give at least one --anchor CA.pem or --pin SIGNER.pem", field="--anchor")
    if args.anchor and not args.signer and not args.any_signer:
        raise ConfigError(
            "an --anchor vouches for every certificate it issues: name the signer by its subject attributes "
            "(--signer CN=moit --signer O=...), or give --any-signer",
            field="--signer",
        )
    attributes = []
    for item in args.signer or ():
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError(f"{item!r} is not ATTRIBUTE=VALUE")
            attributes.append((attribute_oid(name.strip()), value.strip()))
        except ValueError as exc:
            raise ConfigError(str(exc), field="--signer") from None
    trust = TrustStore.from_files(
        args.party,
        anchors=args.anchor or (),
        pinned=args.pin or (),
        intermediates=args.intermediate or (),
        revocation=_revocation(args),
        signers=SignerIdentity((SignerRule(subject=tuple(attributes)),)) if attributes and args.anchor else None,
        any_signer=args.any_signer,
    )
    policy = (
        VerifyPolicy.vnsw_legacy(allow_sha1=args.allow_sha1)
        if args.profile == "vnsw-legacy"
        else VerifyPolicy(allow_sha1=args.allow_sha1)
    )
    at = datetime.fromisoformat(args.at) if args.at else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        result = verify_document(read_input(args.input), trust=trust, policy=policy, expect=args.expect, at=at)
    except SignatureError as exc:
        if args.json:
            print(json.dumps({"valid": False, **exc.to_dict()}, ensure_ascii=False))
        else:
            where = f" ({exc.field})" if exc.field else ""
            print(f"INVALID {exc.code}{where}: {exc.message}", file=sys.stderr)
        return 1
    summary = {
        "valid": True,
        "signer": result.signer_subject,
        "fingerprint_sha256": result.signer_fingerprint,
        "chain": [c.subject.rfc4514_string() for c in result.chain],
        "signed_element": result.element.getroottree().getpath(result.element),
        "reference": result.reference_uri,
        "signature_method": result.signature_method,
        "digest_method": result.digest_method,
        "c14n_method": result.c14n_method,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"VALID signer={summary['signer']} sha256={summary['fingerprint_sha256']} "
            f"element={summary['signed_element']}"
        )
    return 0


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--p12", help="PKCS#12 bundle with the signing key and certificate")
    p.add_argument("--key", help="PEM private key (with --cert)")
    p.add_argument("--cert", help="PEM certificate of the key (more certificates in the file form the chain)")
    p.add_argument("--chain", help="PEM file of intermediate certificates to put in KeyInfo")
    p.add_argument("--password", help="password of the key or PKCS#12 (prefer --password-env)")
    p.add_argument("--password-env", help="environment variable holding the password")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sign", help="sign an XML document (enveloped XMLDSig)")
    p.add_argument("input", metavar="IN", help="document to sign, or - for stdin")
    p.add_argument("-o", "--output", help="where to write the signed document (default stdout)")
    _key_options(p)
    p.add_argument("--profile", choices=("default", "vnsw-legacy"), default="default")
    p.add_argument("--c14n", choices=("exclusive", "inclusive"), default="exclusive")
    p.add_argument("--algorithm", choices=sorted(_SIGNATURE_NAMES), help="signature method (default by key type)")
    p.add_argument("--digest", choices=sorted(_DIGEST_NAMES), default="sha256")
    p.add_argument("--reference-id", help="sign the element with this Id instead of the whole document")
    p.add_argument("--allow-sha1", action="store_true", help="permit SHA-1 (VNSW legacy parties only)")
    p.set_defaults(handler=_cmd_sign)

    p = sub.add_parser("verify", help="verify a signed XML document for a party (exit 0 valid, 1 invalid)")
    p.add_argument("input", metavar="IN", help="signed document, or - for stdin")
    p.add_argument("--party", default="cli", help="party name used in messages")
    p.add_argument("--anchor", action="append", help="trust anchor CA certificate (PEM); repeatable")
    p.add_argument(
        "--signer",
        action="append",
        metavar="ATTR=VALUE",
        help="subject attribute the signer's certificate must carry to sign through --anchor (CN=moit, "
        "organizationIdentifier=..., serialNumber=...); repeatable, all must hold",
    )
    p.add_argument("--any-signer", action="store_true", help="accept any certificate --anchor vouches for")
    p.add_argument("--pin", action="append", help="pinned signer certificate (PEM); repeatable")
    p.add_argument("--intermediate", action="append", help="intermediate CA certificate (PEM); repeatable")
    p.add_argument("--crl", action="append", help="CRL file (PEM or DER); repeatable")
    p.add_argument("--ocsp", nargs="?", const="", help="check OCSP (URL, or the certificate's AIA when no URL)")
    p.add_argument("--profile", choices=("default", "vnsw-legacy"), default="default")
    p.add_argument("--allow-sha1", action="store_true")
    p.add_argument("--expect", help="XPath of the element that will be processed; it must be the signed one")
    p.add_argument("--at", help="check certificates at this ISO-8601 instant instead of now")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_cmd_verify)
