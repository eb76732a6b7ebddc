"""The gateway performance suite: SQLite and PostgreSQL, 1/2/4 nodes, 8 KB and 100 KB signed e-C/O (one command).

    .venv/bin/python benchmarks/run_suite.py [--messages 600] [--json benchmarks/results.json] [--quick]

For every (store, nodes, size) it starts real ``nswgw serve`` subprocesses (SQLite: one node, its own
file; PostgreSQL: 1, 2 or 4 nodes on one fresh schema of the database at ``--dsn``), one real loopback
receiver, and measures

* **peak**: messages/s end to end (first submission → last receipt at the receiver) with a closed loop of
  ``--concurrency`` submissions in flight, spread round-robin over the nodes;
* **latency at half the peak rate**: an open loop at 50 % of that peak, as many messages as the peak run;
  p50/p99/p99.9 of submission → receipt at the receiver;
* **CPU per message**: user+system CPU time of the gateway processes (``/proc``) over the peak run / messages;
* **peak RSS per submission** (``--rss-sizes``, :mod:`peak_rss`): one fresh SQLite gateway per document size
  (1, 8 and 16 MiB signed documents with a large base64 element), its peak resident growth as a ratio to the
  payload (``peak_rss`` in the JSON);
* **the full path** (``--full-path-messages``, :mod:`full_path`): one SQLite node verifying, mapping (form-d and
  JSON) and signing to two partner processes that answer signed receipts, its gateway CPU per message against
  the floor measured before and after it (``full_path`` in the JSON, schema in ``full_path``'s docstring).

The **crypto floor** is measured in the same run: raw python-xmlsec parse + verify + sign of the same
document with the key already loaded (no policy, no trust store), one core. Every throughput is given as a
ratio to that floor (``1.0`` = the gateway does nothing but the crypto, on one core).

The documents are e-C/O signed by MOIT (``signing.dev.bench.make_certificate_of_origin`` and
``signing.sign.sign_document``, RSA-2048). The gateways run with the verification the broker has wired
(printed as ``gateway verification``); the report says what the gateway did to each message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-moit-token"
CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- documents and the crypto floor


PEMS: dict[str, bytes] = {}
"""moit.pem (pinned for MOIT), gw.key.pem / gw.pem (the gateway's signing key), written next to each config."""


def raw_verifying_key(certificate: Any) -> Any:
    """The python-xmlsec key of ``certificate`` (a ``cryptography`` certificate), for the crypto floor's verifies."""
    import xmlsec
    from cryptography.hazmat.primitives import serialization

    der = certificate.public_bytes(serialization.Encoding.DER)
    return xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer, None)


def raw_signing_key(private_key: Any, certificate: Any) -> Any:
    """The python-xmlsec key of ``private_key`` with ``certificate`` loaded (for KeyInfo), for :func:`raw_sign`."""
    import xmlsec
    from cryptography.hazmat.primitives import serialization

    key = xmlsec.Key.from_memory(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        xmlsec.constants.KeyDataFormatPem,
        None,
    )
    key.load_cert_from_memory(
        certificate.public_bytes(serialization.Encoding.DER), xmlsec.constants.KeyDataFormatCertDer
    )
    return key


def raw_sign(root: Any, key: Any) -> None:
    """Sign ``root`` in place as the gateway does (enveloped, exclusive C14N, RSA-SHA256, the certificate in
    KeyInfo) with raw python-xmlsec and ``key`` already loaded: the signing part of the crypto floor."""
    import xmlsec

    tpl = xmlsec.template.create(root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256)
    root.append(tpl)
    ref = xmlsec.template.add_reference(tpl, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(tpl))
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(tpl)


def make_documents(sizes: dict[str, int], count: int) -> tuple[dict[str, list[bytes]], dict[str, float]]:
    """``count`` signed e-C/O per size, each its own certificate (the gateway refuses a signed document it has
    already accepted from the sender under another message id), and the raw python-xmlsec floor (seconds per
    message: parse+verify+sign)."""
    import xmlsec
    from cryptography.hazmat.primitives import serialization
    from lxml import etree

    from gateway.errors import SignatureLocationInvalid, SignatureMissing
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
    signer = SoftwareSigner(moit_key, moit)
    pem = serialization.Encoding.PEM
    PEMS["moit.pem"] = moit.public_bytes(pem)
    PEMS["gw.pem"] = gw.public_bytes(pem)
    PEMS["gw.key.pem"] = gw_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    verify_key = raw_verifying_key(moit)
    sign_key = raw_signing_key(gw_key, gw)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def floor_once(signed: bytes) -> None:
        root = etree.fromstring(signed, parser)  # parse
        sig = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
        if sig is None:
            raise SignatureMissing("the signed document has no ds:Signature", field="ds:Signature")
        ctx = xmlsec.SignatureContext()
        ctx.key = verify_key
        ctx.verify(sig)  # verify
        parent = sig.getparent()
        if parent is None:
            raise SignatureLocationInvalid("the ds:Signature is the document root", field="ds:Signature")
        parent.remove(sig)
        raw_sign(root, sign_key)  # sign
        etree.tostring(root)

    docs: dict[str, list[bytes]] = {}
    floor: dict[str, float] = {}
    for name, size in sizes.items():
        template = make_certificate_of_origin(size)
        docs[name] = [
            sign_document(template.replace(b"VN-TH 26/01/00123", b"VN-TH 26/01/%07d" % i, 1), signer, SigningProfile())
            for i in range(count)
        ]
        signed = docs[name][0]
        for _ in range(20):
            floor_once(signed)
        samples = []
        for _ in range(5):
            n = 60
            t0 = time.process_time()
            for _ in range(n):
                floor_once(signed)
            samples.append((time.process_time() - t0) / n)
        floor[name] = statistics.median(samples)
    return docs, floor


# ---------------------------------------------------------------------------- the receiver


def next_request(buffer: bytearray) -> tuple[dict[bytes, bytes], bytes] | None:
    """Take the first complete HTTP/1.1 request off ``buffer``: its headers (names lower-cased) and its
    Content-Length body; ``None`` (and ``buffer`` untouched) until all of it has arrived. The loopback partners
    of the benchmarks read their requests with it on asyncio directly, to keep their own CPU small."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    headers = {}
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return headers, body


class _ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for the gateway's HTTP adapter: reads each request's headers
    and Content-Length body, answers ``200 {"message_id": ...}``. Written on asyncio directly so that the
    rig's own CPU per message stays small next to the gateway's (it shares the machine with it)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := next_request(self.buffer)) is not None:
            headers, _ = request
            mid = headers.get(b"x-message-id", b"").decode()
            self.receiver.arrived.setdefault(mid, time.perf_counter())
            self.receiver.event.set()
            body = json.dumps({"message_id": mid}).encode()
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )


class Receiver:
    """Loopback partner: records the arrival time of every message id and answers with a receipt."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _ReceiverProtocol(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# ---------------------------------------------------------------------------- gateway nodes


def free_port() -> int:
    """A free loopback port (bound, read, released) for ``nswgw serve --port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of process ``pid`` so far, all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def _machine() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every running PostgreSQL process (server and backends), by pid."""
    found = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    found[int(d.name)] = cpu_seconds(int(d.name))
            except OSError:
                continue
    return found


def _postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds PostgreSQL used since ``before`` (processes started since count in full; one that has
    exited since (a backend whose connection closed) is left out rather than subtracted)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in _postgres_cpu().items())


def write_config(directory: Path, store: str, dsn: str | None, receiver_port: int, verification: str) -> Path:
    if store == "sqlite":
        store_section = 'url = "sqlite:///bench.db"\nsynchronous = "FULL"'
    else:
        store_section = f'kind = "postgresql"\ndsn = "{dsn}"\npool_size = 8'
    for name, data in PEMS.items():
        (directory / name).write_bytes(data)
    secure = verification == "signature"
    trust = '[parties.MOIT.trust]\n[[parties.MOIT.trust.pinned]]\ncertificate = "moit.pem"' if secure else ""
    keys = '[[signing.keys]]\nkey = "gw.key.pem"\ncertificate = "gw.pem"' if secure else ""
    path = directory / "bench.toml"
    path.write_text(f"""
[gateway]
verification = "{verification}"
signing = "{"on" if secure else "off"}"
poll_interval = 0.5
lease_seconds = 30
max_message_bytes = 4194304
[store]
{store_section}
{keys}
[parties.MOIT]
tokens = ["{TOKEN}"]
document_types = ["eco.form_d"]
{trust}
[destinations.TH]
url = "http://127.0.0.1:{receiver_port}/inbox"
concurrency = 16
timeout = 30
[[routes]]
document_type = "eco.form_d"
to = ["TH"]
[document_types."eco.form_d"]
codes = ["861"]
roots = ["{{urn:nsw:atiga:form-d:1}}CertificateOfOrigin"]  # the benchmark's signed certificate (pass-through XML)
""")
    return path


async def start_nodes(
    config: Path, n: int, session: aiohttp.ClientSession
) -> list[tuple[subprocess.Popen[bytes], int]]:
    nodes = []
    for i in range(n):
        port = free_port()
        log = (config.parent / f"node{i}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.commands", "serve", "--config", str(config), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )
        log.close()
        nodes.append((proc, port))
    for proc, port in nodes:
        await wait_healthy(session, port, proc, config.parent / "node0.log", "gateway node", 2000)
    return nodes


async def wait_healthy(
    session: aiohttp.ClientSession, port: int, proc: subprocess.Popen[bytes], log: Path, name: str, tail: int
) -> None:
    """Until ``nswgw serve`` on ``port`` answers ``/healthz`` with 200 (60 s at most); when ``proc`` exits
    first, end the run with the last ``tail`` characters of ``log``."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited: {log.read_text()[-tail:]}")
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start")
        await asyncio.sleep(0.05)


async def stop_nodes(nodes: list[tuple[subprocess.Popen[bytes], int]]) -> None:
    for proc, _ in nodes:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in nodes:
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------- load


def submission_headers(mid: str, token: str = TOKEN) -> dict[str, str]:
    """The headers of the suite's e-C/O submission ``mid``, by the client holding ``token``."""
    return {
        "Authorization": f"Bearer {token}",
        "X-Message-Id": mid,
        "X-Document-Type": "eco.form_d",
        "Content-Type": "application/xml",
    }


async def submit(session: aiohttp.ClientSession, port: int, mid: str, body: bytes, token: str = TOKEN) -> str:
    """Submit ``body`` as ``mid`` to the node on ``port`` until it is accepted: a retryable refusal (503, 507: the
    gateway says when to resend) is tried again for up to a minute; anything else, a 500 among them (a fault of the
    gateway that a resend would only hide), ends the run. The gateway's id of the message."""
    end = time.monotonic() + 60
    while True:
        async with session.post(
            f"http://127.0.0.1:{port}/v1/messages",
            data=body,
            headers=submission_headers(mid, token),
        ) as r:
            data = await r.json()
            if r.status in (200, 202):
                return str(data["id"])
            if r.status not in (503, 507) or time.monotonic() > end:
                raise SystemExit(f"submission refused: {r.status} {data}")
        await asyncio.sleep(0.01)


async def _wait_delivered(receiver: Receiver, ids: list[str], limit: float = 300) -> None:
    end = time.monotonic() + limit
    while not all(i in receiver.arrived for i in ids):
        if time.monotonic() > end:
            raise SystemExit(f"only {sum(i in receiver.arrived for i in ids)}/{len(ids)} delivered")
        receiver.event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.event.wait(), 0.5)


def messages_per_case(messages: int) -> int:
    """Submissions of one case: the warm-up, the peak run and the run at half the peak."""
    return max(20, messages // 10) + messages + max(100, messages)


async def closed_loop(
    session: aiohttp.ClientSession,
    ports: list[int],
    receiver: Receiver,
    bodies: Iterator[bytes],
    messages: int,
    concurrency: int,
    tag: str,
) -> tuple[float, list[str]]:
    queue = list(range(messages))
    ids: list[str] = []

    async def worker(w: int) -> None:
        while queue:
            n = queue.pop()
            ids.append(await submit(session, ports[n % len(ports)], f"{tag}-{n}", next(bodies)))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    await _wait_delivered(receiver, ids)
    last = max(receiver.arrived[i] for i in ids)
    return messages / (last - t0), ids


async def open_loop(
    session: aiohttp.ClientSession,
    ports: list[int],
    receiver: Receiver,
    bodies: Iterator[bytes],
    rate: float,
    messages: int,
    tag: str,
) -> list[float]:
    sent: dict[str, float] = {}

    async def one(n: int) -> None:
        t = time.perf_counter()
        gid = await submit(session, ports[n % len(ports)], f"{tag}-{n}", next(bodies))
        sent[gid] = t

    start = time.perf_counter()
    tasks = []
    for n in range(messages):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    await _wait_delivered(receiver, list(sent))
    return sorted(receiver.arrived[g] - t for g, t in sent.items())


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of the sorted ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


async def create_schema(dsn: str, prefix: str) -> tuple[str, str]:
    """A fresh schema ``<prefix>_<10 hex>`` in the database at ``dsn``, migrated to this gateway's version:
    its name and a DSN that works in it (``search_path``)."""
    import asyncpg

    from gateway.store.postgres import upgrade_schema

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.close()
    schema_dsn = f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"
    await upgrade_schema(schema_dsn)
    return schema, schema_dsn


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` of :func:`create_schema` and everything in it."""
    import asyncpg

    admin = await asyncpg.connect(dsn)
    await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await admin.close()


async def run_case(
    store: str, nodes: int, size: str, documents: list[bytes], floor: float, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """One case on a fresh store: every submission is another of ``documents`` (at least as many as it sends)."""
    bodies = iter(documents)
    directory = workdir / f"{store}-{nodes}-{size}"
    directory.mkdir()
    schema = None
    dsn = None
    if store == "postgresql":
        schema, dsn = await create_schema(args.dsn, "nswgw_bench")
    receiver = Receiver()
    await receiver.start()
    config = write_config(directory, store, dsn, receiver.port, args.verification)
    conn = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
            procs = await start_nodes(config, nodes, session)
            ports = [p for _, p in procs]
            try:
                await closed_loop(
                    session, ports, receiver, bodies, max(20, args.messages // 10), args.concurrency, "warm"
                )
                cpu0, pg0, me0, m0 = (
                    sum(cpu_seconds(p.pid) for p, _ in procs),
                    _postgres_cpu(),
                    time.process_time(),
                    _machine(),
                )
                peak, _ = await closed_loop(session, ports, receiver, bodies, args.messages, args.concurrency, "peak")
                cpu = sum(cpu_seconds(p.pid) for p, _ in procs) - cpu0
                pg_cpu, harness_cpu, m1 = _postgres_cpu_since(pg0), time.process_time() - me0, _machine()
                busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
                half = await open_loop(session, ports, receiver, bodies, peak / 2, max(100, args.messages), "half")
            finally:
                await stop_nodes(procs)
    finally:
        await receiver.stop()
        if schema is not None:
            await drop_schema(args.dsn, schema)
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "store": store,
        "nodes": nodes,
        "document": size,
        "bytes": len(documents[0]),
        "messages": args.messages,
        "msg_per_s": round(peak, 1),
        "floor_msg_per_s": round(1 / floor, 1),
        "ratio_to_floor": round(peak * floor, 3),
        "cpu_ms_per_msg": round(cpu / args.messages * 1000, 2),
        "postgres_cpu_ms_per_msg": round(pg_cpu / args.messages * 1000, 2),
        "harness_cpu_ms_per_msg": round(harness_cpu / args.messages * 1000, 2),
        "machine_busy_pct": round(busy * 100),
        "half_rate_msg_per_s": round(peak / 2, 1),
        "p50_ms": round(percentile(half, 0.5) * 1000, 1),
        "p99_ms": round(percentile(half, 0.99) * 1000, 1),
        "p999_ms": round(percentile(half, 0.999) * 1000, 1),
        "p99_overhead_ms": round((percentile(half, 0.99) - floor) * 1000, 1),
    }


def _verification_wired() -> str:
    try:
        from gateway.security import build_signer, build_verifier  # noqa: F401
    except ImportError:
        return "not wired (well-formed parse only)"
    return "verify + sign (gateway.security)"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    known = {"8KB": 8 * 1024, "100KB": 100 * 1024}
    wanted = [k.strip() for k in args.sizes.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in known]
    if unknown or not wanted:
        raise SystemExit(f"--sizes: unknown document size {', '.join(unknown) or '(none given)'}; known: 8KB, 100KB")
    sizes = {k: known[k] for k in wanted}
    from peak_rss import parse_sizes
    from peak_rss import run as run_peak_rss

    rss_sizes = parse_sizes(args.rss_sizes) if args.rss_sizes.strip() else {}
    docs, floor = make_documents(sizes, messages_per_case(args.messages))
    cases = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4)]
    if args.quick:
        cases = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    results = []
    with tempfile.TemporaryDirectory(prefix="nswgw-bench-") as tmp:
        for size in sizes:
            for store, nodes in cases:
                r = await run_case(store, nodes, size, docs[size], floor[size], args, Path(tmp))
                results.append(r)
                print(f"  done: {store} x{nodes} {size}: {r['msg_per_s']} msg/s", file=sys.stderr, flush=True)
    full_path = None
    if args.full_path_messages > 0:
        import full_path as full_path_bench

        full_path = await full_path_bench.run(
            argparse.Namespace(
                messages=min(args.full_path_messages, 60) if args.quick else args.full_path_messages,
                latency_messages=min(args.full_path_latency_messages, 100)
                if args.quick
                else args.full_path_latency_messages,
                rate=0.0,
                concurrency=args.concurrency,
                size=8192,
                store="sqlite",
                dsn=args.dsn,
                workdir=None,
                store_dsn=None,
                intake_processes=None,
                cpu_threads=None,
            )
        )
        print(f"  done: full path: {full_path['peak']['msg_per_s']} msg/s", file=sys.stderr, flush=True)
    peak_rss = []
    if rss_sizes:
        peak_rss = await run_peak_rss(rss_sizes, lines=False)
        print(f"  done: peak RSS {args.rss_sizes}", file=sys.stderr, flush=True)
    by = {(r["store"], r["nodes"], r["document"]): r for r in results}
    targets = {}
    for size in sizes:
        if any(k not in by for k in (("sqlite", 1, size), ("postgresql", 1, size), ("postgresql", 2, size))):
            continue
        s1, p1, p2 = by[("sqlite", 1, size)], by[("postgresql", 1, size)], by[("postgresql", 2, size)]
        targets[size] = {
            "sqlite_ratio_to_floor": s1["ratio_to_floor"],
            "sqlite_meets_0.5": s1["ratio_to_floor"] >= 0.5,
            "pg_2_over_1": round(p2["msg_per_s"] / p1["msg_per_s"], 2),
            "pg_meets_1.6": p2["msg_per_s"] / p1["msg_per_s"] >= 1.6,
            "worst_p99_overhead_ms": max(r["p99_overhead_ms"] for r in results if r["document"] == size),
            "p99_meets_50ms": all(r["p99_overhead_ms"] < 50 for r in results if r["document"] == size),
        }
    return {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "gateway_verification": args.verification,
        "broker_wiring": _verification_wired(),
        "floor_us": {k: round(v * 1e6, 1) for k, v in floor.items()},
        "results": results,
        "targets": targets,
        "peak_rss": peak_rss,
        "full_path": full_path,
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nNSW gateway benchmark: {report['machine']['cores']} cores, gateway verification "
        f"'{report['gateway_verification']}' (broker wiring: {report['broker_wiring']}), load average at the end"
        f" {report['machine']['load_average_at_end']}"
    )
    print(
        "crypto floor (raw python-xmlsec parse+verify+sign, 1 core): "
        + ", ".join(f"{k} {v} µs = {round(1e6 / v, 1)} msg/s" for k, v in report["floor_us"].items())
    )
    head = (
        f"{'store':10} {'nodes':>5} {'doc':>6} {'msg/s':>8} {'x floor':>8} {'CPU ms/msg':>10} "
        f"{'PG ms':>6} {'rig ms':>6} {'busy%':>5} {'@rate':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        print(
            f"{r['store']:10} {r['nodes']:>5} {r['document']:>6} {r['msg_per_s']:>8} {r['ratio_to_floor']:>8} "
            f"{r['cpu_ms_per_msg']:>10} {r['postgres_cpu_ms_per_msg']:>6} {r['harness_cpu_ms_per_msg']:>6} "
            f"{r['machine_busy_pct']:>5} {r['half_rate_msg_per_s']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} "
            f"{r['p999_ms']:>8}"
        )
    print(
        "CPU ms/msg: gateway processes; PG ms: PostgreSQL server processes; rig ms: load generator + receiver;"
        " busy%: whole machine during the peak run"
    )
    print("latencies: submission -> receipt at the receiver, open loop at half the peak rate (@rate msg/s)")
    if report.get("full_path"):
        from full_path import table_lines

        print("\n".join(table_lines(report["full_path"])))
    for size, t in report["targets"].items():
        print(
            f"targets {size}: SQLite {t['sqlite_ratio_to_floor']}x floor (>= 0.5: {t['sqlite_meets_0.5']}); "
            f"PostgreSQL 2 nodes / 1 node = {t['pg_2_over_1']} (>= 1.6: {t['pg_meets_1.6']}); "
            f"worst p99 overhead {t['worst_p99_overhead_ms']} ms (< 50: {t['p99_meets_50ms']})"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=600, help="messages per peak run")
    p.add_argument("--concurrency", type=int, default=32, help="submissions in flight in the peak run")
    p.add_argument("--dsn", default=os.environ.get("NSWGW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument(
        "--verification",
        default="signature",
        choices=["signature", "well-formed", "off"],
        help='[gateway] verification of the nodes ("signature" also signs every delivery)',
    )
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"), help="write the results here")
    p.add_argument("--quick", action="store_true", help="skip the 4-node runs")
    p.add_argument("--sizes", default="8KB,100KB", help="documents to run, comma-separated (8KB, 100KB)")
    p.add_argument(
        "--rss-sizes",
        default="1MiB,8MiB,16MiB",
        help="peak RSS per submission (benchmarks/peak_rss.py), comma-separated; empty: skip",
    )
    p.add_argument(
        "--full-path-messages",
        type=int,
        default=1000,
        help="peak messages of benchmarks/full_path.py (SQLite, form-d + JSON, signed receipts); 0: skip",
    )
    p.add_argument(
        "--full-path-latency-messages", type=int, default=2000, help="open-loop samples of the full-path run"
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    report = asyncio.run(main_async(args))
    print_table(report)
    if report["peak_rss"]:
        from peak_rss import print_table as print_peak_rss

        print_peak_rss(report["peak_rss"])
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
