"""``nswgw keys``: the development PKI from the command line.

* ``nswgw keys init DIR [--parties a,b,...] [--key-type rsa2048|rsa3072|p256|p384]
  [--ocsp-url URL] [--crl-url URL] [--p12-password-env VAR] [--force]``
  creates a root CA, an issuing CA, an OCSP responder certificate and one
  signing certificate (PEM, key, PKCS#12) per party, plus CRLs and the
  ``index.txt`` that ``openssl ocsp -index`` reads (see :mod:`signing.dev.pki`).
* ``nswgw keys revoke DIR NAME [--reason key_compromise|...]`` revokes a
  certificate: re-signs ``crl.pem`` and marks it ``R`` in ``index.txt``.
* ``nswgw keys hsm-init DIR --pki PKI_DIR [--key-type ...] [--token T] [--label L] [--id HEX]``
  creates a SoftHSM2 development token in DIR, generates the key on it and
  certifies it from the dev PKI (see :mod:`signing.dev.hsm`); prints the
  ``[[signing.keys]]`` block.

For development and demonstrations only: private keys are stored unencrypted.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway.errors import ConfigError
from signing.dev.pki import DEFAULT_PARTIES, KEY_KINDS, REVOCATION_REASONS, DevPki, init_dev_pki

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``keys`` command and its ``init`` / ``revoke`` sub-commands."""
    keys = subparsers.add_parser("keys", help="development PKI: keys, certificates, CRLs, OCSP index")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)

    init = sub.add_parser("init", help="create a development PKI in DIR")
    init.add_argument("directory", metavar="DIR")
    init.add_argument(
        "--parties",
        default=",".join(DEFAULT_PARTIES),
        help="comma-separated party names (default: %(default)s)",
    )
    init.add_argument("--key-type", choices=KEY_KINDS, default="rsa2048", help="key type (default: %(default)s)")
    init.add_argument("--ocsp-url", help="OCSP responder URL written into the end-entity certificates (AIA)")
    init.add_argument("--crl-url", help="CRL URL written into the end-entity certificates (CRL distribution point)")
    init.add_argument(
        "--p12-password-env",
        metavar="VAR",
        help="environment variable holding the PKCS#12 password (default password: changeit)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing PKI in DIR")
    init.set_defaults(handler=_init)

    revoke = sub.add_parser("revoke", help="revoke a certificate of the development PKI")
    revoke.add_argument("directory", metavar="DIR")
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("--reason", choices=sorted(REVOCATION_REASONS), default="unspecified")
    revoke.set_defaults(handler=_revoke)

    hsm = sub.add_parser(
        "hsm-init",
        help="create a SoftHSM2 development token in DIR, generate a signing key on it, certify it from a dev PKI",
    )
    hsm.add_argument("directory", metavar="DIR", help="where the token, its configuration and PIN files go")
    hsm.add_argument("--pki", required=True, metavar="PKI_DIR", help="a dev PKI made by 'nswgw keys init'")
    hsm.add_argument("--key-type", choices=KEY_KINDS, default="rsa2048", help="key type (default: %(default)s)")
    hsm.add_argument("--token", default="nswgw-dev", help="token label (default: %(default)s)")
    hsm.add_argument("--label", default="gateway", help="key and certificate object label (default: %(default)s)")
    hsm.add_argument("--id", help="key and certificate object id in hex (default: random)")
    hsm.add_argument("--common-name", default="nsw-gateway", help="certificate CN (default: %(default)s)")
    hsm.add_argument("--pin-env", metavar="VAR", help="environment variable holding the user PIN (default: generated)")
    hsm.add_argument("--module", help="PKCS#11 module (default: Debian's libsofthsm2.so)")
    hsm.set_defaults(handler=_hsm_init)


def _init(args: argparse.Namespace) -> int:
    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    password = b"changeit"
    if args.p12_password_env:
        value = os.environ.get(args.p12_password_env)
        if not value:
            raise ConfigError(f"environment variable {args.p12_password_env} is not set", field="--p12-password-env")
        password = value.encode()
    pki = init_dev_pki(
        args.directory,
        parties,
        key_kind=args.key_type,
        ocsp_url=args.ocsp_url,
        crl_url=args.crl_url,
        p12_password=password,
        force=args.force,
    )
    manifest = pki.manifest
    print(f"Created a development PKI ({args.key_type}) in {pki.directory}:")
    for name, entry in manifest["certificates"].items():
        files = ", ".join(entry[k] for k in ("cert", "key", "p12") if entry.get(k))
        print(f"  {name:<14} {entry['subject']}")
        print(f"  {'':<14} serial {entry['serial']}  sha256 {entry['sha256']}")
        print(f"  {'':<14} {files}")
    print(f"  CRLs:          {DevPki.CRL} (issuing CA), {DevPki.ROOT_CRL} (root)")
    print(f"  OCSP index:    {DevPki.INDEX}")
    print(f"  Manifest:      {DevPki.MANIFEST} ({len(manifest['files'])} files)")
    print("Private keys are unencrypted (mode 0600): for development and tests only.")
    print(
        f"OCSP responder: openssl ocsp -index {pki.index_path} -port PORT -rsigner {pki.ocsp_cert_path} "
        f"-rkey {pki.ocsp_key_path} -CA {pki.issuing_cert_path} -nmin 5"
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    pki = DevPki.open(args.directory)
    crl = pki.revoke(args.name, args.reason)
    entry = pki.manifest["certificates"][args.name]
    print(f"Revoked {args.name} (serial {entry['serial']}, reason {entry['reason']}) at {entry['revoked_at']}")
    print(f"  {pki.crl_path} re-signed, {len(list(crl))} revoked certificate(s), next update {crl.next_update_utc}")
    print(f"  {pki.index_path} updated")
    return 0


def _hsm_init(args: argparse.Namespace) -> int:
    from signing.dev.hsm import SOFTHSM2_MODULE, init_dev_token

    pin = None
    if args.pin_env:
        pin = os.environ.get(args.pin_env)
        if not pin:
            raise ConfigError(f"environment variable {args.pin_env} is not set", field="--pin-env")
    made = init_dev_token(
        args.directory,
        DevPki.open(args.pki),
        key_kind=args.key_type,
        token=args.token,
        key_label=args.label,
        key_id=args.id,
        common_name=args.common_name,
        pin=pin,
        module=args.module or SOFTHSM2_MODULE,
    )
    print(f"Generated a {args.key_type} key on SoftHSM2 token {made.token!r} in {made.directory}:")
    print(f"  label {made.key_label}  id {made.key_id}  certificate {made.certificate.subject.rfc4514_string()}")
    print(f"  certificate (also on the token): {made.certificate_path}")
    print(f"  user PIN: {made.pin_path} (mode 0600)")
    print("The gateway needs this in its environment:")
    print(f"  export SOFTHSM2_CONF={made.conf_path}")
    print("and this in its configuration:\n")
    print(made.config_block())
    return 0
