"""End-to-end throughput and latency of the gateway on the demo topology (a script, not a test).

Runs ``gateway.dev.demo.run_demo`` (real HTTP API, SQLite WAL store with group commit, real loopback partners,
fan-out to two destinations per e-C/O) twice with ~8 KB signed e-C/O Form D documents:

* **on**: ``verification = "signature"`` (every submission verified against its party's trust store) and
  ``signing = "on"`` (every delivery signed with the gateway's key; partners verify it and answer with
  signed receipts, which the gateway verifies);
* **off**: ``verification = "off"``, ``signing = "off"`` (the same signed documents passed through,
  JSON receipts),

and prints messages/s, p50/p99 end-to-end latency (submission → arrival at the partner), the ratio
off/on, and the **crypto floor** measured in the same run: parse + verify + sign of the same 8 KB
document with raw python-xmlsec in one thread (messages/s per core). The simulated ministries sign
before the clock starts; the partners' verification and receipt signing run in a separate process
(``--partner-processes``, default 1; 0 puts them in the gateway's process).

    .venv/bin/python benchmarks/gateway_throughput.py [--messages 2000] [--size 8192] [--synchronous FULL]
    .venv/bin/python benchmarks/gateway_throughput.py --profile on   # cProfile of one run, top 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import time

from gateway.dev.demo import _pct, _signer, demo_pki, eco_form_d, run_demo
from gateway.errors import SignatureLocationInvalid, SignatureMissing


def measure(
    messages: int, size: int, mode: str, synchronous: str, concurrency: int, partner_processes: int = 1
) -> dict[str, float]:
    on = mode == "on"
    r = asyncio.run(
        run_demo(
            messages=messages,
            size=size,
            verification="signature" if on else "off",
            signing="on" if on else "off",
            flaky_seconds=0.0,
            progress=False,
            synchronous=synchronous,
            concurrency=concurrency,
            partner_processes=partner_processes,
        )
    )
    lat = r.all_latencies
    return {
        "messages": r.messages,
        "seconds": round(r.elapsed, 2),
        "msg_per_s": round(r.throughput, 1),
        "p50_ms": round((_pct(lat, 0.5) or 0) * 1000, 1),
        "p99_ms": round((_pct(lat, 0.99) or 0) * 1000, 1),
        "writes_per_commit": round(r.commits[1] / max(1, r.commits[0]), 1),
        "signatures_verified": r.submissions_verified
        + sum(r.partner_verified.values())
        + sum(r.receipts_verified.values()),
    }


def crypto_floor(size: int, seconds: float = 3.0) -> dict[str, float]:
    """Parse + verify + re-sign one signed ~``size``-byte document with raw python-xmlsec, one thread."""
    import xmlsec
    from cryptography.hazmat.primitives.serialization import Encoding
    from lxml import etree

    from signing.sign import sign_document

    pki = demo_pki()
    signed = sign_document(eco_form_d(1, "TH", size=size), _signer(pki, "moit"))
    verify_key = xmlsec.Key.from_memory(
        pki.party("moit").cert.public_bytes(Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem, None
    )
    gw = pki.party("nsw-gateway")
    sign_key = xmlsec.Key.from_file(str(gw.key_path), xmlsec.constants.KeyDataFormatPem, None)
    C = xmlsec.constants

    def once() -> bytes:
        root = etree.fromstring(signed, etree.XMLParser(resolve_entities=False, no_network=True))
        sig = xmlsec.tree.find_node(root, C.NodeSignature)
        if sig is None:
            raise SignatureMissing("the signed document has no ds:Signature", field="ds:Signature")
        ctx = xmlsec.SignatureContext()
        ctx.key = verify_key
        ctx.verify(sig)
        parent = sig.getparent()
        if parent is None:
            raise SignatureLocationInvalid("the ds:Signature is the document root", field="ds:Signature")
        parent.remove(sig)
        tmpl = xmlsec.template.create(root, C.TransformExclC14N, C.TransformRsaSha256)
        root.append(tmpl)
        ref = xmlsec.template.add_reference(tmpl, C.TransformSha256, uri="")
        xmlsec.template.add_transform(ref, C.TransformEnveloped)
        xmlsec.template.add_transform(ref, C.TransformExclC14N)
        out = xmlsec.SignatureContext()
        out.key = sign_key
        out.sign(tmpl)
        return etree.tostring(root)

    once()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        n += 1
    elapsed = time.perf_counter() - start
    return {
        "bytes": len(signed),
        "msg_per_s_per_core": round(n / elapsed, 1),
        "ms_per_message": round(elapsed / n * 1000, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--size", type=int, default=8192, help="approximate bytes per signed e-C/O")
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--concurrency", type=int, default=16, help="deliveries in flight per destination")
    p.add_argument(
        "--partner-processes",
        type=int,
        default=1,
        help="processes doing the partners' verification and receipt signing (0: in the gateway's)",
    )
    p.add_argument("--profile", choices=["on", "off"], help="profile one run with cProfile instead")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        m = measure(args.messages, args.size, args.profile, args.synchronous, args.concurrency, args.partner_processes)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(json.dumps(m))
        print(out.getvalue())
        return
    floor = crypto_floor(args.size)
    on = measure(args.messages, args.size, "on", args.synchronous, args.concurrency, args.partner_processes)
    off = measure(args.messages, args.size, "off", args.synchronous, args.concurrency, args.partner_processes)
    cores = os.cpu_count() or 1
    report = {
        "cores": cores,
        "size": args.size,
        "synchronous": args.synchronous,
        "signed_on": on,
        "signed_off": off,
        "overhead_ratio": round(off["msg_per_s"] / on["msg_per_s"], 2) if on["msg_per_s"] else None,
        "crypto_floor": floor,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"{args.messages} messages, signed e-C/O of ~{floor['bytes']} B, SQLite synchronous={args.synchronous}, "
        f"{cores} cores, partner crypto in {args.partner_processes} other process(es)"
    )
    for name, m in (("verification+signing on ", on), ("verification+signing off", off)):
        print(
            f"  {name}: {m['msg_per_s']:7.1f} msg/s  p50 {m['p50_ms']:7.1f} ms  p99 {m['p99_ms']:7.1f} ms"
            f"  ({m['writes_per_commit']} writes/commit, {m['signatures_verified']} signatures verified)"
        )
    print(f"  overhead (off/on throughput): {report['overhead_ratio']}x")
    print(
        f"  crypto floor (parse+verify+sign, raw python-xmlsec, 1 thread): {floor['msg_per_s_per_core']} msg/s/core"
        f" ({floor['ms_per_message']} ms/message)"
    )


if __name__ == "__main__":
    main()
