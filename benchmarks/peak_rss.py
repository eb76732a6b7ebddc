"""Peak memory of the gateway against the size of one submission (a script that prints numbers, not a test).

    .venv/bin/python benchmarks/peak_rss.py [--sizes 1MiB,8MiB,16MiB] [--verification off] [--warm]
        [--store postgresql [--dsn postgresql://postgres@127.0.0.1:5432/test]] [--json out.json]

For every size it starts a **fresh** ``nswgw serve`` subprocess (SQLite store in a temporary directory,
``max_message_bytes`` raised to the parser's ceiling, 16 MiB, ``verification = "signature"`` and
``signing = "on"``) and one real loopback receiver, waits until the gateway is idle, resets the process's
peak-RSS counter (``echo 5 > /proc/PID/clear_refs``) and reads its resident size, submits **one** signed
e-C/O whose bulk is a base64 attachment element (``<Attachment>``: a scanned document inside the XML, one
text node, above libxml2's own 10 MB text limit for the largest sizes) on ``POST /v1/messages``, waits until
the receiver has it, and reads the peak (``VmHWM`` of ``/proc/PID/status``). One process per size, so the peak
is the submission's own: intake (read, parse, verify, map, sign, store) and its delivery.

Reported per size (JSON lines on stdout, then a table): ``payload_bytes`` (the submitted document),
``baseline_rss_bytes``, ``peak_rss_bytes``, ``growth_bytes`` = peak − baseline, ``growth_ratio`` = growth /
payload (target: at most 2), the seconds from submission to arrival, and the load average of the machine at
the end of the case (the machine is shared; memory figures do not depend on it, times do).

``--verification off`` measures the same submissions passed through unverified and unsigned (the transport
and the store alone: what an opaque payload costs). ``--store postgresql`` runs each gateway on a fresh
migrated schema of the server at ``--dsn`` (``NSWGW_BENCH_PG``), dropped afterwards. ``--warm`` first submits
one 64 KiB document and waits for its delivery, so that what the first submission costs once whatever its size
(modules imported on first use, the store's page cache, the intake thread) is not counted; without it a 1 MiB
figure is mostly such fixed costs. Each result names its ``verification``, ``store`` and ``warm``.

AS4 submissions are not measured apart: an AS4 user message carries exactly one payload, the document itself,
which the endpoint hands to the same intake as REST; no binary attachment reaches the store on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_suite import TOKEN, Receiver, start_nodes, stop_nodes, submission_headers  # noqa: E402

LIMIT = 16 * 1024 * 1024
"""``max_message_bytes`` of the measured gateway: the XML parser's ceiling, the largest the limits allow."""
_SIZE = re.compile(r"^(\d+)(KiB|MiB)$")
_UNITS = {"KiB": 1024, "MiB": 1024 * 1024}
WARMUP = 64 * 1024
"""Bytes of the document ``--warm`` submits (and waits to be delivered) before the measured one."""
_WARMUP_NAME = "warm-up"
_SIGNATURE_ROOM = 8 * 1024
"""Bytes left for the enveloped signature (RSA-2048 with its certificate) below each target size."""


def parse_sizes(text: str) -> dict[str, int]:
    """``"1MiB,8MiB,16MiB"`` → ``{"1MiB": 1048576, ...}``; a size above :data:`LIMIT` or malformed is refused."""
    sizes = {}
    for name in (s.strip() for s in text.split(",") if s.strip()):
        m = _SIZE.match(name)
        if m is None:
            raise SystemExit(f"--sizes: {name!r} is not a size such as 256KiB or 8MiB")
        value = int(m.group(1)) * _UNITS[m.group(2)]
        if not 64 * 1024 <= value <= LIMIT:
            raise SystemExit(f"--sizes: {name} is outside 64KiB..16MiB (the gateway's limit)")
        sizes[name] = value
    if not sizes:
        raise SystemExit("--sizes: no size given")
    return sizes


def make_documents(sizes: dict[str, int]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """One signed e-C/O per size, at most that many bytes, its bulk a base64 ``<Attachment>``; and the PEM files
    of the configuration (the signer's certificate, the gateway's key and certificate)."""
    from cryptography.hazmat.primitives import serialization
    from lxml import etree

    from signing.dev.bench import make_certificate_of_origin
    from signing.dev.pki import generate_key, issue_certificate
    from signing.keys import SoftwareSigner
    from signing.policy import SigningProfile
    from signing.sign import sign_document

    ca_key = generate_key("rsa2048")
    ca = issue_certificate(None, ca_key, "Bench Root CA", ca_key.public_key(), is_ca=True)
    moit_key = generate_key("rsa2048")
    moit = issue_certificate(ca, ca_key, "MOIT bench", moit_key.public_key())
    gw_key = generate_key("rsa2048")
    gw = issue_certificate(ca, ca_key, "NSW gateway bench", gw_key.public_key())
    pem = serialization.Encoding.PEM
    pems = {
        "moit.pem": moit.public_bytes(pem),
        "gw.pem": gw.public_bytes(pem),
        "gw.key.pem": gw_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }
    signer = SoftwareSigner(moit_key, moit)
    docs = {}
    for name, size in sizes.items():
        root = etree.fromstring(make_certificate_of_origin(4096))
        skeleton = len(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        attachment = etree.SubElement(root, "Attachment", Name="certificate-scan.pdf", MimeType="application/pdf")
        room = size - skeleton - _SIGNATURE_ROOM - 100
        attachment.text = base64.b64encode(os.urandom(room // 4 * 3)).decode("ascii")
        doc = sign_document(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), signer, SigningProfile())
        if len(doc) > size:
            raise SystemExit(f"the {name} document came out at {len(doc)} bytes")
        docs[name] = doc
    return docs, pems


def write_config(
    directory: Path, receiver_port: int, pems: dict[str, bytes], verification: str = "signature", dsn: str | None = None
) -> Path:
    """The measured gateway's configuration: a SQLite file in ``directory``, or with ``dsn`` that PostgreSQL schema."""
    store = 'url = "sqlite:///rss.db"' if dsn is None else f'kind = "postgresql"\ndsn = "{dsn}"'
    for name, data in pems.items():
        (directory / name).write_bytes(data)
    path = directory / "rss.toml"
    path.write_text(f"""
[gateway]
verification = "{verification}"
signing = "{"on" if verification == "signature" else "off"}"
max_message_bytes = {LIMIT}
[store]
{store}
[[signing.keys]]
key = "gw.key.pem"
certificate = "gw.pem"
[parties.MOIT]
tokens = ["{TOKEN}"]
document_types = ["eco.form_d"]
[parties.MOIT.trust]
[[parties.MOIT.trust.pinned]]
certificate = "moit.pem"
[destinations.TH]
url = "http://127.0.0.1:{receiver_port}/inbox"
timeout = 120
[[routes]]
document_type = "eco.form_d"
to = ["TH"]
[document_types."eco.form_d"]
codes = ["861"]
roots = ["{{urn:nsw:atiga:form-d:1}}CertificateOfOrigin"]
""")
    return path


def _status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid``, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak(pid: int) -> bool:
    """Reset the peak-RSS counter of ``pid`` to its current resident size (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def _settle(pid: int, seconds: float = 1.0) -> int:
    """The resident size of ``pid`` once it held still for ``seconds`` (the gateway idle after start)."""
    last = _status(pid)["VmRSS"]
    while True:
        await asyncio.sleep(seconds)
        now = _status(pid)["VmRSS"]
        if abs(now - last) < 256 * 1024:
            return now
        last = now


@contextlib.asynccontextmanager
async def _schema(pg: str | None) -> AsyncIterator[str | None]:
    """With ``pg`` (a server's DSN): the DSN of a fresh migrated schema there, dropped afterwards."""
    if pg is None:
        yield None
        return
    import asyncpg

    from gateway.store.postgres import upgrade_schema

    schema = f"nswgw_rss_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        dsn = f"{pg}{'&' if '?' in pg else '?'}search_path={schema}"
        await upgrade_schema(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def _deliver(
    session: aiohttp.ClientSession,
    port: int,
    receiver: Receiver,
    proc: Any,
    document: bytes,
    mid: str,
    directory: Path,
) -> float:
    """Submit ``document`` as ``mid`` and wait until the receiver has it; the seconds that took."""
    t0 = time.perf_counter()
    async with session.post(
        f"http://127.0.0.1:{port}/v1/messages",
        data=document,
        headers=submission_headers(mid),
    ) as r:
        answer = await r.json()
        if r.status != 202:
            raise SystemExit(f"{mid}: submission refused: {r.status} {answer}")
    gid = str(answer["id"])  # deliveries carry the gateway's id as X-Message-Id
    deadline = time.monotonic() + 300
    while gid not in receiver.arrived:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{mid}: not delivered; see {directory / 'node0.log'}")
        receiver.event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.event.wait(), 0.5)
    return float(receiver.arrived[gid] - t0)


async def measure(
    name: str,
    document: bytes,
    pems: dict[str, bytes],
    workdir: Path,
    verification: str = "signature",
    pg: str | None = None,
    warmup: bytes | None = None,
) -> dict[str, Any]:
    """One fresh gateway (on a fresh schema of the PostgreSQL server ``pg``, else a SQLite file), one submission
    of ``document`` (after ``warmup``, delivered before the peak counter is reset, if given); its peak RSS
    growth."""
    async with _schema(pg) as dsn:
        return await _measure(name, document, pems, workdir, verification, dsn, warmup)


async def _measure(
    name: str,
    document: bytes,
    pems: dict[str, bytes],
    workdir: Path,
    verification: str,
    dsn: str | None,
    warmup: bytes | None,
) -> dict[str, Any]:
    directory = workdir / name
    directory.mkdir()
    receiver = Receiver()
    await receiver.start()
    config = write_config(directory, receiver.port, pems, verification, dsn)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            [(proc, port)] = await start_nodes(config, 1, session)
            try:
                if warmup is not None:
                    await _deliver(session, port, receiver, proc, warmup, f"rss-{name}-warmup", directory)
                await _settle(proc.pid)
                reset = _reset_peak(proc.pid)
                before = _status(proc.pid)
                baseline = before["VmRSS"] if reset else before["VmHWM"]
                seconds = await _deliver(session, port, receiver, proc, document, f"rss-{name}", directory)
                peak = _status(proc.pid)["VmHWM"]
            finally:
                await stop_nodes([(proc, port)])
    finally:
        await receiver.stop()
    growth = peak - baseline
    return {
        "document": name,
        "verification": verification,
        "store": "sqlite" if dsn is None else "postgresql",
        "warm": warmup is not None,
        "payload_bytes": len(document),
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "growth_bytes": growth,
        "growth_ratio": round(growth / len(document), 2),
        "peak_reset": reset,
        "seconds_to_delivery": round(seconds, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def run(
    sizes: dict[str, int],
    *,
    lines: bool = True,
    verification: str = "signature",
    pg: str | None = None,
    warm: bool = False,
) -> list[dict[str, Any]]:
    """Every size in its own fresh gateway (on PostgreSQL ``pg`` if given; with ``warm``, after a
    :data:`WARMUP`-byte submission); each result is also printed as a JSON line when ``lines``."""
    docs, pems = make_documents({**sizes, **({_WARMUP_NAME: WARMUP} if warm else {})})
    warmup = docs.pop(_WARMUP_NAME, None)
    results = []
    with tempfile.TemporaryDirectory(prefix="nswgw-rss-") as tmp:
        for name, document in docs.items():
            result = await measure(name, document, pems, Path(tmp), verification, pg, warmup)
            results.append(result)
            if lines:
                print(json.dumps(result), flush=True)
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    mib = 1024 * 1024
    head = (
        f"{'document':>9} {'payload MiB':>11} {'baseline MiB':>12} {'peak MiB':>9} {'growth MiB':>10} {'x payload':>9}"
    )
    mode = ""
    if results:
        first = results[0]
        mode = f"verification {first['verification']}, {first['store']} store{', warm' if first['warm'] else ''}"
    print(f"\npeak RSS of one fresh gateway per submission ({mode}; target: growth <= 2x payload); limit {LIMIT} bytes")
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['document']:>9} {r['payload_bytes'] / mib:>11.2f} {r['baseline_rss_bytes'] / mib:>12.1f} "
            f"{r['peak_rss_bytes'] / mib:>9.1f} {r['growth_bytes'] / mib:>10.1f} {r['growth_ratio']:>9}"
        )
    if results:
        print(f"load average at the end: {results[-1]['load_average']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1MiB,8MiB,16MiB", help="documents to submit, comma-separated (64KiB..16MiB)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument(
        "--verification",
        default="signature",
        choices=["signature", "off"],
        help='"off": no verification, no signing (the document passes through: transport and store alone)',
    )
    p.add_argument(
        "--warm",
        action="store_true",
        help=f"submit a {WARMUP // 1024} KiB document first: count only what grows with the measured one",
    )
    p.add_argument("--store", default="sqlite", choices=["sqlite", "postgresql"], help="the measured gateway's store")
    p.add_argument(
        "--dsn",
        default=os.environ.get("NSWGW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="--store postgresql: the server (each size gets a fresh schema there, dropped afterwards)",
    )
    args = p.parse_args(argv)
    pg = args.dsn if args.store == "postgresql" else None
    results = asyncio.run(run(parse_sizes(args.sizes), verification=args.verification, pg=pg, warm=args.warm))
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
