"""Signing benchmark: the gateway's sign/verify against raw python-xmlsec, in the same run.

For an 8 KB and a 100 KB certificate-of-origin document and for RSA-2048 and
P-256 keys, it prints µs per operation of

* ``gateway``: :func:`signing.sign.sign_document` / :func:`signing.verify.verify_document`
  (hardened parse, policy checks, trust-store validation, xmlsec verification);
* ``raw``: python-xmlsec alone (lxml parse, template, ``SignatureContext.sign``
  / ``verify`` with the key already loaded), the floor;

and their ratio. With ``--hsm`` it also signs the same documents with the same key types held in a SoftHSM2
token (:class:`signing.pkcs11.Pkcs11Signer`) next to a file key, and prints both, their ratio and the load
average. Run with ``nswgw bench signing [--hsm]`` or ``python benchmarks/bench_signing.py [--hsm]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

__all__ = ["make_certificate_of_origin", "main", "register"]

_GOODS = [
    ("Frozen pangasius fillets, skinless", "030462", "WO"),
    ("Robusta coffee beans, not roasted", "090111", "WO"),
    ("Cotton T-shirts, knitted", "610910", "CTH"),
    ("Rubber tyres for motor cars", "401110", "RVC 45%"),
    ("Wooden bedroom furniture", "940350", "RVC 40%"),
    ("Cashew nuts, shelled", "080132", "WO"),
]


def make_certificate_of_origin(target_bytes: int) -> bytes:
    """A realistic ATIGA Form D-like certificate of origin of about ``target_bytes`` bytes."""
    root = etree.Element("CertificateOfOrigin", nsmap={None: "urn:nsw:atiga:form-d:1"})
    for tag, value in (
        ("CertificateNumber", "VN-TH 26/01/00123"),
        ("IssueDate", "2026-11-20"),
        ("ExportingCountry", "VN"),
        ("ImportingCountry", "TH"),
        ("IssuingAuthority", "Ministry of Industry and Trade of Viet Nam - Export Import Agency"),
    ):
        etree.SubElement(root, tag).text = value
    for role, name in (("Exporter", "Mekong Seafood Export JSC"), ("Consignee", "Siam Fresh Foods Co., Ltd.")):
        party = etree.SubElement(root, role)
        etree.SubElement(party, "Name").text = name
        addr = etree.SubElement(party, "Address")
        etree.SubElement(addr, "Line").text = "12 Nguyen Hue Boulevard, District 1"
        etree.SubElement(addr, "City").text = "Ho Chi Minh City"
        etree.SubElement(addr, "Country").text = "VN" if role == "Exporter" else "TH"
    transport = etree.SubElement(root, "Transport")
    etree.SubElement(transport, "Mode").text = "1"
    etree.SubElement(transport, "Vessel").text = "MV SAIGON STAR V.2611"
    etree.SubElement(transport, "DeparturePort").text = "VNSGN"
    etree.SubElement(transport, "DischargePort").text = "THBKK"
    goods = etree.SubElement(root, "GoodsItems")
    seq = 0
    while len(etree.tostring(root)) < target_bytes - 400:
        seq += 1
        desc, hs, crit = _GOODS[seq % len(_GOODS)]
        item = etree.SubElement(goods, "GoodsItem", Sequence=str(seq))
        etree.SubElement(item, "Description").text = f"{desc}, lot {seq:05d}"
        etree.SubElement(item, "HSCode").text = hs
        etree.SubElement(item, "Packages", Type="CT").text = str(100 + seq)
        etree.SubElement(item, "GrossWeight", Unit="KGM").text = f"{1250.5 + seq:.1f}"
        etree.SubElement(item, "FOBValue", Currency="USD").text = f"{18350 + 17 * seq:.2f}"
        etree.SubElement(item, "OriginCriterion").text = crit
        etree.SubElement(item, "InvoiceNumber").text = f"INV-2026-{seq:06d}"
        etree.SubElement(item, "InvoiceDate").text = (date(2026, 11, 1) + timedelta(days=seq % 19)).isoformat()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _time(fn: Callable[[], object], iterations: int) -> float:
    """Median µs per call over ``iterations`` calls (after a warm-up)."""
    for _ in range(max(3, iterations // 20)):
        fn()
    samples = []
    batch = 10
    for _ in range(max(1, iterations // batch)):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t0) / batch)
    return statistics.median(samples) * 1e6


def run(iterations: int = 200) -> list[dict[str, object]]:
    from signing.dev.pki import generate_key, issue_certificate
    from signing.keys import SoftwareSigner
    from signing.policy import SigningProfile, VerifyPolicy
    from signing.sign import sign_document
    from signing.trust import TrustStore
    from signing.verify import verify_document

    ca_key = generate_key("p256")
    ca = issue_certificate(None, ca_key, "Bench Root CA", ca_key.public_key(), is_ca=True)
    results: list[dict[str, object]] = []
    for key_kind, transform in (
        ("rsa2048", xmlsec.constants.TransformRsaSha256),
        ("p256", xmlsec.constants.TransformEcdsaSha256),
    ):
        key = generate_key(key_kind)
        cert = issue_certificate(ca, ca_key, f"MOIT bench {key_kind}", key.public_key())
        signer = SoftwareSigner(key, cert)
        trust = TrustStore("moit", anchors=(ca,), any_signer=True)
        policy = VerifyPolicy()
        profile = SigningProfile()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        cert_der = cert.public_bytes(serialization.Encoding.DER)
        raw_sign_key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem, None)
        raw_sign_key.load_cert_from_memory(cert_der, xmlsec.constants.KeyDataFormatCertDer)
        raw_verify_key = xmlsec.Key.from_memory(cert_der, xmlsec.constants.KeyDataFormatCertDer, None)
        raw_parser = etree.XMLParser(resolve_entities=False, no_network=True)

        for size_name, size in (("8KB", 8 * 1024), ("100KB", 100 * 1024)):
            doc = make_certificate_of_origin(size)

            def raw_sign(doc: bytes = doc) -> bytes:
                root = etree.fromstring(doc, raw_parser)
                sig = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N, transform)
                root.append(sig)
                ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="")
                xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
                xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
                ki = xmlsec.template.ensure_key_info(sig)
                xmlsec.template.add_x509_data(ki)
                ctx = xmlsec.SignatureContext()
                ctx.key = raw_sign_key
                ctx.sign(sig)
                return etree.tostring(root)

            signed = sign_document(doc, signer, profile)

            def raw_verify(signed: bytes = signed) -> None:
                root = etree.fromstring(signed, raw_parser)
                sig = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
                ctx = xmlsec.SignatureContext()
                ctx.key = raw_verify_key
                if sig is None:
                    raise RuntimeError("the benchmark document lost its signature")
                ctx.verify(sig)

            ours_sign = _time(lambda: sign_document(doc, signer, profile), iterations)
            base_sign = _time(raw_sign, iterations)
            ours_verify = _time(lambda: verify_document(signed, trust=trust, policy=policy), iterations)
            base_verify = _time(raw_verify, iterations)
            for op, ours, base in (("sign", ours_sign, base_sign), ("verify", ours_verify, base_verify)):
                results.append(
                    {
                        "key": key_kind,
                        "document": size_name,
                        "bytes": len(doc),
                        "operation": op,
                        "gateway_us": round(ours, 1),
                        "raw_xmlsec_us": round(base, 1),
                        "ratio": round(ours / base, 3),
                    }
                )
    return results


def run_hsm(iterations: int = 200) -> list[dict[str, object]]:
    """``sign_document`` with the same key type held in a file and in a SoftHSM2 token, same documents, same run.

    The token is a fresh one in a temporary directory (:func:`signing.dev.hsm.init_dev_token`); SOFTHSM2_CONF
    of this process points to it while the benchmark runs.
    """
    import os
    import tempfile

    from signing.dev.hsm import init_dev_token
    from signing.dev.pki import generate_key, init_dev_pki, issue_certificate
    from signing.keys import SoftwareSigner
    from signing.pkcs11 import Pkcs11Signer
    from signing.policy import SigningProfile
    from signing.sign import sign_document

    results: list[dict[str, object]] = []
    previous = os.environ.get("SOFTHSM2_CONF")
    with tempfile.TemporaryDirectory(prefix="nswgw-bench-hsm-") as tmp:
        pki = init_dev_pki(os.path.join(tmp, "pki"), ["bench"])
        try:
            for key_kind in ("rsa2048", "p256"):
                made = init_dev_token(
                    os.path.join(tmp, "token"), pki, key_kind=key_kind, key_label=f"bench-{key_kind}", pin="bench-pin"
                )
                hsm = Pkcs11Signer(made.module, made.token, pin="bench-pin", key_label=made.key_label)
                key = generate_key(key_kind)
                file_key = SoftwareSigner(
                    key, issue_certificate(pki.issuing_cert, pki.issuing_key, "bench", key.public_key())
                )
                profile = SigningProfile()
                for size_name, size in (("8KB", 8 * 1024), ("100KB", 100 * 1024)):
                    doc = make_certificate_of_origin(size)
                    file_us = _time(lambda: sign_document(doc, file_key, profile), iterations)
                    hsm_us = _time(lambda: sign_document(doc, hsm, profile), iterations)
                    results.append(
                        {
                            "key": key_kind,
                            "document": size_name,
                            "bytes": len(doc),
                            "operation": "sign",
                            "file_key_us": round(file_us, 1),
                            "softhsm2_us": round(hsm_us, 1),
                            "ratio": round(hsm_us / file_us, 3),
                            "load_average": [round(x, 2) for x in os.getloadavg()],
                        }
                    )
                hsm.close()
        finally:
            if previous is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = previous
    return results


def _print_hsm(results: list[dict[str, object]]) -> None:
    print("\nsign_document, the same key type in a file and in a SoftHSM2 token (PKCS#11):")
    print(f"{'key':8} {'doc':6} {'file key µs':>12} {'SoftHSM2 µs':>12} {'ratio':>6}  load average")
    for r in results:
        load = " ".join(f"{x:.2f}" for x in r["load_average"])  # type: ignore[attr-defined]
        print(f"{r['key']:8} {r['document']:6} {r['file_key_us']:>12} {r['softhsm2_us']:>12} {r['ratio']:>6}  {load}")


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--hsm", action="store_true", help="also sign with the same key types in a SoftHSM2 token (needs softhsm2)"
    )
    args = parser.parse_args(argv)
    results = run(args.iterations)
    hsm_results = run_hsm(args.iterations) if args.hsm else []
    print(f"{'key':8} {'doc':6} {'op':7} {'gateway µs':>11} {'raw xmlsec µs':>14} {'ratio':>6}")
    for r in results:
        print(
            f"{r['key']:8} {r['document']:6} {r['operation']:7} {r['gateway_us']:>11} {r['raw_xmlsec_us']:>14}"
            f" {r['ratio']:>6}"
        )
    worst = max(float(r["ratio"]) for r in results)  # type: ignore[arg-type]
    print(f"worst ratio: {worst:.3f} (target <= 1.3)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if hsm_results:
        _print_hsm(hsm_results)
    if args.json:
        out: dict[str, object] = {"results": results, "worst_ratio": worst}
        if hsm_results:
            out["hsm"] = hsm_results
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    return main(
        ["--iterations", str(args.iterations)]
        + (["--json", args.json_out] if args.json_out else [])
        + (["--hsm"] if args.hsm else [])
    )


def register(subparsers: Any) -> None:
    """``nswgw bench signing``."""
    p = subparsers.add_parser("bench", help="benchmarks")
    bench_sub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    b = bench_sub.add_parser("signing", help="sign/verify µs per op against raw python-xmlsec")
    b.add_argument("--iterations", type=int, default=200)
    b.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    b.add_argument("--hsm", action="store_true", help="also sign with the same key types in a SoftHSM2 token")
    b.set_defaults(handler=_cmd_bench)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
