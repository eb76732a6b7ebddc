"""The full-path benchmark: what "signed + verified + mapped + durable" costs, against the same minute's crypto floor.

    .venv/bin/python benchmarks/full_path.py [--messages 1000] [--latency-messages 2000] [--rate R] [--store sqlite]
    .venv/bin/python benchmarks/full_path.py --quick --json /tmp/full.json --workdir /tmp/keep   # the test's run

**Topology**, every piece in its own process on 127.0.0.1:

* one real ``nswgw serve`` (SQLite ``synchronous = "FULL"`` by default, or ``--store postgresql`` on a fresh
  schema of ``--dsn``), ``verification = "signature"``, ``signing = "on"``;
* party MOIT (pinned certificate, ``format = "form-d"``) submits ministry-signed ATIGA e-C/O Form D of ~8 KB
  (``--size``) over ``POST /v1/messages`` from a **client process** (``client`` role of this script);
* route ``eco.form_d`` → ``TH`` (``format = "form-d"``: read, validated through the harmonized model and emitted
  again, then signed with the gateway's key) and ``CUSTOMS`` (``format = "json"``: mapped to the harmonized JSON;
  JSON cannot carry an XML signature, so that delivery is unsigned, ``signing.profile = "none"``);
* each destination is a **partner process** (``partner`` role): TH verifies the gateway's signature (pinned
  gateway certificate, ``signing.verify``); both answer a ``<Receipt>`` (``gateway.ports.receipt_document``)
  signed with their own P-256 key, which the gateway verifies (``receipt = "signed"``) and records.

**Gateway crypto per message** (the floor's composition): 1 verify of the MOIT signature (RSA-2048, parse
included) + 1 sign of the TH delivery (RSA-2048, template, serialize) + 2 receipt verifies (P-256, parse
included). The floor is exactly that with raw python-xmlsec on one core, keys pre-loaded, no policy or trust,
measured **before and after every case** (peak, then latency): ``floor_us.before`` / ``after`` / ``spread``.

**Gateway CPU** is user+system CPU of the ``nswgw serve`` process (``/proc/PID/stat``, all its threads, and its
intake worker processes, ``--intake-processes``) from the
client's first send to the moment the store holds every receipt of the case, ÷ messages. The benchmark adds
nothing to the gateway process: completion is read from the store (read-only SQLite connection, or PostgreSQL)
by this orchestrating process.

**Peak**: a closed loop of ``--concurrency`` submissions in flight; msg/s = messages ÷ (last receipt recorded −
first send). **Latency**: an open loop at ``--rate`` msg/s (default half the peak), each send on a fixed schedule
regardless of replies; latency = the journal's time of the *second* receipt recorded (``DELIVERED`` entry, both
destinations) − the send's *scheduled* time, so a client or gateway that falls behind is counted in full.

JSON schema (``--json``; ``run_suite.py`` stores the same object as ``full_path`` in ``benchmarks/results.json``)::

    {
      "schema": "nswgw-full-path/1",
      "store": "sqlite" | "postgresql", "synchronous": "FULL" | null,
      "intake_processes": int,               # [gateway] intake_processes of the node (0: threads)
      "cpu_threads": int,                    # [gateway] cpu_threads of the node (intake and receipt threads)
      "document_bytes": int,                 # the signed submission
      "delivery_bytes": {"TH": int, "CUSTOMS": int},
      "crypto_per_message": {"submission_verify": 1, "delivery_sign": 1, "receipt_verify": 2},
      "floor_us": {"before": float, "after": float, "after_latency": float,
                   "mean": float,            # (before + after) / 2: the peak's floor
                   "spread": float},         # |after - before| / mean
      "peak": {"messages": int, "concurrency": int, "seconds": float, "msg_per_s": float,
               "gateway_cpu_ms_per_msg": float},
      "ratio_cpu_to_floor": float,           # gateway_cpu_ms_per_msg * 1000 / floor_us.mean
      "cores_of_crypto": float,              # msg_per_s * floor_us.mean / 1e6
      "latency": {"rate_msg_per_s": float, "samples": int, "p50_ms": float, "p90_ms": float,
                  "p99_ms": float, "max_ms": float, "gateway_cpu_ms_per_msg": float,
                  "send_lag_p99_ms": float},     # the client's own lag behind its schedule (included above)
      "load_average": {"before": [1, 5, 15 min], "after": [...]},
      "machine": {"cores": int, "python": str}
    }

``--suite-json benchmarks/results.json`` stores the result there as ``full_path`` without re-running the suite.
``--readme`` rewrites the rows between ``<!-- full-path:begin -->`` and ``<!-- full-path:end -->`` in README.md
from the JSON (:func:`readme_rows`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run_suite import (
    cpu_seconds,
    create_schema,
    drop_schema,
    free_port,
    next_request,
    percentile,
    raw_sign,
    raw_signing_key,
    raw_verifying_key,
    submit,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-full-path-moit"
DESTINATIONS = ("TH", "CUSTOMS")
SCHEMA = "nswgw-full-path/1"
README_BEGIN = "<!-- full-path:begin -->"
README_END = "<!-- full-path:end -->"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------- partner process


def run_partner(name: str, pki_dir: str, verify: bool) -> int:
    """Serve one destination on an ephemeral port (printed on stdout): verify the gateway's signature when
    ``verify``, answer every delivery with a ``<Receipt>`` signed with the partner's key. HTTP/1.1 keep-alive
    on asyncio directly, so the partner's own overhead stays small on the shared machine."""
    from gateway.dev.demo import _signer
    from gateway.errors import NswError
    from gateway.ports import receipt_document
    from signing.policy import VerifyPolicy
    from signing.sign import sign_document
    from signing.trust import PinnedCertificate, TrustStore
    from signing.verify import verify_document

    pki = bench_pki(Path(pki_dir))
    trust = TrustStore(party="nsw-gateway", pinned=(PinnedCertificate(pki.party("nsw-gateway").cert),))
    policy = VerifyPolicy()
    signer = _signer(pki, PARTNER_KEY_NAMES[name])
    seen: set[str] = set()

    def answer(mid: str, body: bytes) -> bytes:
        if verify:
            try:
                verify_document(body, trust=trust, policy=policy)
            except NswError as exc:
                reply = json.dumps({"error": {"code": exc.code}}).encode()
                return b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                    len(reply),
                    reply,
                )
        duplicate = mid in seen
        seen.add(mid)
        receipt = sign_document(receipt_document(mid, body, duplicate=duplicate), signer)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nX-Receipt-For: %s\r\nContent-Length: %d\r\n\r\n"
        return head % (mid.encode(), len(receipt)) + receipt

    class Protocol(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = bytearray()
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (request := next_request(self.buffer)) is not None:
                headers, body = request
                assert self.transport is not None
                self.transport.write(answer(headers.get(b"x-message-id", b"").decode(), body))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until the orchestrator closes our stdin
        server.close()

    asyncio.run(serve())
    return 0


# ---------------------------------------------------------------------------- client process


def _read_bodies(path: str) -> list[bytes]:
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from(">I", data, i)
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def run_client(port: int, bodies_path: str, tag: str, concurrency: int, rate: float) -> int:
    """Submit every body of ``bodies_path``: a closed loop of ``concurrency`` in flight (``rate`` 0) or an open
    loop at ``rate`` msg/s on a fixed schedule. Prints ``ready``, waits for a line on stdin, then prints one JSON
    object: ``{"t0": wall time of the first send, "sent": [[gateway id, scheduled, actual send wall time], ...]}``."""
    import aiohttp

    bodies = _read_bodies(bodies_path)

    async def main() -> dict[str, Any]:
        sent: list[list[Any]] = []
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=300)
        ) as session:

            async def send(n: int, scheduled: float) -> None:
                started = time.time()
                gid = await submit(session, port, f"{tag}-{n}", bodies[n], TOKEN)
                sent.append([gid, scheduled, started])

            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            wall0, mono0 = time.time(), time.monotonic()
            if rate > 0:
                tasks = []
                for n in range(len(bodies)):
                    due = mono0 + n / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(send(n, wall0 + n / rate)))
                await asyncio.gather(*tasks)
            else:
                queue = list(range(len(bodies)))[::-1]

                async def worker() -> None:
                    while queue:
                        n = queue.pop()
                        await send(n, time.time())

                await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"t0": wall0, "sent": sent}

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


# ---------------------------------------------------------------------------- documents and the floor


PARTNER_KEY_NAMES = {"TH": "th-asw", "CUSTOMS": "customs"}
"""The dev-PKI key each partner signs its receipts with (P-256, as in the demo)."""


def bench_pki(directory: Path) -> Any:
    """The development PKI of the run (gateway, MOIT, the partners), reused when ``directory`` holds it."""
    from signing.dev.pki import DevPki, generate_key, init_dev_pki

    if (directory / DevPki.MANIFEST).exists():
        pki = DevPki.open(directory)
        if {"nsw-gateway", "moit", *PARTNER_KEY_NAMES.values()} <= set(pki.names):
            return pki
    pki = init_dev_pki(directory, ("nsw-gateway", "moit"), force=True)
    for name in PARTNER_KEY_NAMES.values():
        pki.issue(name, key=generate_key("p256"))
    return pki


def make_documents(pki: Any, size: int, count: int) -> list[bytes]:
    """``count`` MOIT-signed e-C/O Form D, each its own certificate number (a signed document is accepted once)."""
    from gateway.dev.demo import _signer, eco_form_d
    from signing.sign import sign_document

    signer = _signer(pki, "moit")
    return [sign_document(eco_form_d(n, "TH", size=size), signer) for n in range(count)]


class Floor:
    """Raw python-xmlsec, one thread, keys pre-loaded: what the gateway's crypto per message costs at least
    (1 submission verify + 1 delivery sign + 2 receipt verifies, parse and serialize included)."""

    def __init__(self, pki: Any, submission: bytes) -> None:
        import xmlsec
        from lxml import etree

        from gateway.dev.demo import _signer
        from gateway.ports import receipt_document
        from mappings.registry import convert
        from signing.sign import sign_document

        self.xmlsec, self.etree = xmlsec, etree
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True)

        def cert_key(name: str) -> Any:
            return raw_verifying_key(pki.party(name).cert)

        gw = pki.party("nsw-gateway")
        self.sign_key = raw_signing_key(gw.key, gw.cert)
        self.submission = submission
        self.submission_key = cert_key("moit")
        self.delivery = convert(self._unsigned(submission), "form-d", "form-d")
        json_delivery = convert(self._unsigned(submission), "form-d", "json")
        self.receipts = [
            (
                sign_document(receipt_document("bench", payload), _signer(pki, PARTNER_KEY_NAMES[name])),
                cert_key(PARTNER_KEY_NAMES[name]),
            )
            for name, payload in (("TH", self.delivery), ("CUSTOMS", json_delivery))
        ]
        self.delivery_bytes = {"TH": len(self.delivery), "CUSTOMS": len(json_delivery)}

    def _unsigned(self, signed: bytes) -> bytes:
        root = self.etree.fromstring(signed, self.parser)
        sig = self.xmlsec.tree.find_node(root, self.xmlsec.constants.NodeSignature)
        parent = None if sig is None else sig.getparent()
        assert sig is not None and parent is not None
        parent.remove(sig)
        return bytes(self.etree.tostring(root))

    def _verify(self, data: bytes, key: Any) -> None:
        xmlsec, etree = self.xmlsec, self.etree
        root = etree.fromstring(data, self.parser)
        sig = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.verify(sig)

    def _sign(self, data: bytes) -> bytes:
        root = self.etree.fromstring(data, self.parser)
        raw_sign(root, self.sign_key)
        return bytes(self.etree.tostring(root))

    def once(self) -> None:
        self._verify(self.submission, self.submission_key)
        self._sign(self.delivery)
        for receipt, key in self.receipts:
            self._verify(receipt, key)

    def measure(self, rounds: int = 5, per_round: int = 60) -> float:
        """Median over ``rounds`` of the CPU seconds of one message's crypto (process CPU, one thread)."""
        for _ in range(10):
            self.once()
        samples = []
        for _ in range(rounds):
            t0 = time.process_time()
            for _ in range(per_round):
                self.once()
            samples.append((time.process_time() - t0) / per_round)
        return statistics.median(samples)


# ---------------------------------------------------------------------------- the store, read from outside


class StoreProbe:
    """Reads receipts recorded by the gateway from its store (never through the gateway process)."""

    def __init__(self, sqlite_path: Path | None, dsn: str | None) -> None:
        self.sqlite_path, self.dsn = sqlite_path, dsn
        self._conn: Any = None

    async def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            if self._conn is None:
                self._conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)
            return list(self._conn.execute(sql).fetchall())
        import asyncpg

        if self._conn is None:
            self._conn = await asyncpg.connect(self.dsn)
        return [tuple(r) for r in await self._conn.fetch(sql)]

    async def delivered(self) -> int:
        return int((await self._rows("SELECT count(*) FROM journal WHERE kind = 'DELIVERED'"))[0][0])

    async def wait_delivered(self, total: int, stall: float = 60) -> None:
        """Until the store holds ``total`` verified receipts; fails after ``stall`` seconds without a new one."""
        last, end = -1, 0.0
        while (n := await self.delivered()) < total:
            if n != last:
                last, end = n, time.monotonic() + stall
            elif time.monotonic() > end:
                raise SystemExit(f"only {n}/{total} receipts recorded, none for {stall:.0f} s")
            await asyncio.sleep(0.05)

    async def receipt_times(self) -> dict[str, dict[str, float]]:
        """Per gateway message id, the journal time of each destination's verified receipt."""
        out: dict[str, dict[str, float]] = {}
        for message, destination, at in await self._rows(
            "SELECT message, destination, at FROM journal WHERE kind = 'DELIVERED'"
        ):
            out.setdefault(message, {})[destination] = float(at)
        return out

    async def close(self) -> None:
        if self._conn is not None:
            if self.sqlite_path is not None:
                self._conn.close()
            else:
                await self._conn.close()


# ---------------------------------------------------------------------------- orchestration


def gateway_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of the gateway process ``pid`` and of its live child processes (the intake workers
    of ``[gateway] intake_processes``)."""
    total = cpu_seconds(pid)
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != pid:
            try:
                stat = (d / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    total += cpu_seconds(int(d.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return total


def write_config(
    directory: Path,
    pki: Any,
    store: str,
    dsn: str | None,
    ports: dict[str, int],
    intake_processes: int | None = None,
    cpu_threads: int | None = None,
) -> Path:
    if store == "sqlite":
        store_section = f'url = "sqlite:///{directory / "gateway.db"}"\nsynchronous = "FULL"'
    else:
        store_section = f'kind = "postgresql"\ndsn = "{dsn}"\npool_size = 8'
    dests = ""
    for name, fmt in (("TH", "form-d"), ("CUSTOMS", "json")):
        dests += f"""
[destinations.{name}]
url = "http://127.0.0.1:{ports[name]}/inbox"
format = "{fmt}"
concurrency = 16
timeout = 30
receipt = "signed"
[destinations.{name}.trust]
[[destinations.{name}.trust.pinned]]
certificate = "{pki.party(PARTNER_KEY_NAMES[name]).cert_path}"
"""
        if fmt == "json":  # JSON cannot carry an XML signature
            dests += f'[destinations.{name}.signing]\nprofile = "none"\n'
    path = directory / "full-path.toml"
    path.write_text(f"""
[gateway]
verification = "signature"
signing = "on"
poll_interval = 0.5
lease_seconds = 30
{"" if intake_processes is None else f"intake_processes = {intake_processes}"}
{"" if cpu_threads is None else f"cpu_threads = {cpu_threads}"}
[store]
{store_section}
[[signing.keys]]
pkcs12 = "{pki.party("nsw-gateway").p12_path}"
password = "changeit"
[parties.MOIT]
tokens = ["{TOKEN}"]
document_types = ["eco.form_d"]
format = "form-d"
[parties.MOIT.trust]
[[parties.MOIT.trust.pinned]]
certificate = "{pki.party("moit").cert_path}"
{dests}
[[routes]]
document_type = "eco.form_d"
to = ["TH", "CUSTOMS"]
[document_types."eco.form_d"]
codes = ["861"]
""")
    return path


def _write_bodies(path: Path, bodies: list[bytes]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in bodies))


def _spawn(args: list[str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=ROOT,
        )


async def _healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, port, proc, log, "nswgw serve", 3000)


async def _run_client(
    directory: Path, port: int, gateway_pid: int, bodies: list[bytes], tag: str, concurrency: int, rate: float
) -> dict[str, Any]:
    """Run one client process over ``bodies``; its result gains ``cpu0``, the gateway's CPU seconds just before
    the client was told to start (its own start-up is outside the window)."""
    path = directory / f"{tag}.bodies"
    _write_bodies(path, bodies)
    proc = _spawn(
        ["client", "--port", str(port), "--bodies", str(path), "--tag", tag, "--concurrency", str(concurrency)]
        + ["--rate", str(rate)],
        directory / "client.log",
    )
    assert proc.stdin is not None and proc.stdout is not None
    if (await asyncio.to_thread(proc.stdout.readline)).strip() != "ready":
        raise SystemExit(f"client did not start: {(directory / 'client.log').read_text()[-3000:]}")
    cpu0 = gateway_cpu_seconds(gateway_pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = await asyncio.to_thread(proc.communicate)
    if proc.returncode != 0:
        raise SystemExit(f"client failed: {(directory / 'client.log').read_text()[-3000:]}")
    result: dict[str, Any] = json.loads(out)
    result["cpu0"] = cpu0
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """One full-path run (peak, then latency) on a fresh store; returns the JSON object of the module's schema."""
    load_before = _load()
    keep = args.workdir is not None
    directory = Path(args.workdir) if keep else Path(tempfile.mkdtemp(prefix="nswgw-full-path-"))
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm"):  # an earlier run's store: this run starts fresh
        (directory / name).unlink(missing_ok=True)
    pki = bench_pki(directory / "pki")
    warm_n = max(20, args.messages // 10)
    docs = make_documents(pki, args.size, warm_n + args.messages + args.latency_messages)
    warm, peak_docs, lat_docs = (
        docs[:warm_n],
        docs[warm_n : warm_n + args.messages],
        docs[warm_n + args.messages :],
    )
    floor = Floor(pki, docs[0])
    schema = None
    dsn = args.store_dsn
    if args.store == "postgresql" and dsn is None:
        schema, dsn = await create_schema(args.dsn, "nswgw_full")
    partners: list[subprocess.Popen[str]] = []
    gateway: subprocess.Popen[bytes] | None = None
    probe = StoreProbe(directory / "gateway.db" if args.store == "sqlite" else None, dsn)
    try:
        ports = {}
        for name in DESTINATIONS:
            verify = ["--verify"] if name == "TH" else []
            p = _spawn(["partner", "--name", name, "--pki", str(directory / "pki"), *verify], directory / "partner.log")
            partners.append(p)
            assert p.stdout is not None
            line = (await asyncio.to_thread(p.stdout.readline)).strip()
            if not line.isdigit():
                raise SystemExit(f"partner {name} did not start: {(directory / 'partner.log').read_text()[-3000:]}")
            ports[name] = int(line)
        config = write_config(directory, pki, args.store, dsn, ports, args.intake_processes, args.cpu_threads)
        port = free_port()
        log = directory / "gateway.log"
        with log.open("ab") as out:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway.commands", "serve", "--config", str(config), "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        await _healthy(port, gateway, log)
        done = 0
        await _run_client(directory, port, gateway.pid, warm, "warm", args.concurrency, 0)
        done += 2 * len(warm)
        await probe.wait_delivered(done)

        floor_before = floor.measure()
        peak = await _run_client(directory, port, gateway.pid, peak_docs, "peak", args.concurrency, 0)
        done += 2 * len(peak_docs)
        await probe.wait_delivered(done)
        peak_cpu = gateway_cpu_seconds(gateway.pid) - peak["cpu0"]
        floor_after = floor.measure()
        times = await probe.receipt_times()
        peak_end = max(max(times[gid].values()) for gid, _, _ in peak["sent"])
        peak_seconds = peak_end - peak["t0"]
        msg_per_s = len(peak_docs) / peak_seconds

        rate = args.rate or msg_per_s / 2
        lat = await _run_client(directory, port, gateway.pid, lat_docs, "latency", args.concurrency, rate)
        done += 2 * len(lat_docs)
        await probe.wait_delivered(done)
        lat_cpu = gateway_cpu_seconds(gateway.pid) - lat["cpu0"]
        floor_after_latency = floor.measure()
        times = await probe.receipt_times()
        latencies = sorted(max(times[gid].values()) - scheduled for gid, scheduled, _ in lat["sent"])
        send_lag = sorted(started - scheduled for _, scheduled, started in lat["sent"])
    finally:
        if gateway is not None:
            gateway.terminate()
            await asyncio.to_thread(gateway.wait, 30)
        for p in partners:
            p.communicate()
        await probe.close()
        if schema is not None:
            await drop_schema(args.dsn, schema)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    mean = (floor_before + floor_after) / 2
    cpu_ms = peak_cpu / len(peak_docs) * 1000
    from gateway.config import GatewaySettings

    defaults = GatewaySettings()
    intake_processes = defaults.intake_processes if args.intake_processes is None else args.intake_processes
    cpu_threads = defaults.cpu_threads if args.cpu_threads is None else args.cpu_threads
    return {
        "schema": SCHEMA,
        "store": args.store,
        "synchronous": "FULL" if args.store == "sqlite" else None,
        "intake_processes": intake_processes,
        "cpu_threads": cpu_threads,
        "document_bytes": len(docs[0]),
        "delivery_bytes": floor.delivery_bytes,
        "crypto_per_message": {"submission_verify": 1, "delivery_sign": 1, "receipt_verify": 2},
        "floor_us": {
            "before": round(floor_before * 1e6, 1),
            "after": round(floor_after * 1e6, 1),
            "after_latency": round(floor_after_latency * 1e6, 1),
            "mean": round(mean * 1e6, 1),
            "spread": round(abs(floor_after - floor_before) / mean, 3),
        },
        "peak": {
            "messages": len(peak_docs),
            "concurrency": args.concurrency,
            "seconds": round(peak_seconds, 3),
            "msg_per_s": round(msg_per_s, 1),
            "gateway_cpu_ms_per_msg": round(cpu_ms, 3),
        },
        "ratio_cpu_to_floor": round(cpu_ms / 1000 / mean, 2),
        "cores_of_crypto": round(msg_per_s * mean, 3),
        "latency": {
            "rate_msg_per_s": round(rate, 1),
            "samples": len(latencies),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p90_ms": round(percentile(latencies, 0.9) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "send_lag_p99_ms": round(percentile(send_lag, 0.99) * 1000, 1),
            "gateway_cpu_ms_per_msg": round(lat_cpu / len(lat_docs) * 1000, 3),
        },
        "load_average": {"before": load_before, "after": _load()},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }


# ---------------------------------------------------------------------------- report


def table_lines(r: dict[str, Any]) -> list[str]:
    """The human-readable summary of one result."""
    f, p, lat = r["floor_us"], r["peak"], r["latency"]
    return [
        f"full path ({r['store']}{', synchronous ' + r['synchronous'] if r['synchronous'] else ''}): "
        f"{r['document_bytes']} B MOIT-signed Form D -> TH form-d (signed, {r['delivery_bytes']['TH']} B) + "
        f"CUSTOMS json ({r['delivery_bytes']['CUSTOMS']} B), two signed receipts verified",
        f"  floor (1 verify + 1 sign + 2 receipt verifies, raw xmlsec, 1 core): before {f['before']} us, after "
        f"{f['after']} us (spread {f['spread'] * 100:.1f} %), after the latency run {f['after_latency']} us",
        f"  peak: {p['msg_per_s']} msg/s ({p['messages']} messages, {p['concurrency']} in flight), gateway CPU "
        f"{p['gateway_cpu_ms_per_msg']} ms/msg = {r['ratio_cpu_to_floor']} x floor; msg/s x floor = "
        f"{r['cores_of_crypto']} cores of crypto",
        f"  open loop at {lat['rate_msg_per_s']} msg/s, {lat['samples']} samples, scheduled send -> second receipt "
        f"recorded: p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms "
        f"(gateway CPU {lat['gateway_cpu_ms_per_msg']} ms/msg; client send lag p99 {lat['send_lag_p99_ms']} ms)",
        f"  load average before {r['load_average']['before']}, after {r['load_average']['after']}",
    ]


def readme_rows(results: list[dict[str, Any]]) -> list[str]:
    """The README table (between the full-path markers): one row per result of the schema, in order."""
    rows = [
        "| store | intake | document | msg/s | gateway CPU ms/msg | floor µs before / after (spread) | CPU ÷ floor "
        "| msg/s × floor | p50 / p99 at rate | load average before → after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, p, lat = r["floor_us"], r["peak"], r["latency"]
        processes = r.get("intake_processes", 0)
        threads = r.get("cpu_threads")
        intake = f"{processes} processes" if processes else f"{threads} threads" if threads else "threads"
        rows.append(
            f"| {'SQLite ' + r['synchronous'] if r['store'] == 'sqlite' else 'PostgreSQL'} "
            f"| {intake} | {r['document_bytes'] / 1024:.1f} KB "
            f"| {p['msg_per_s']} | {p['gateway_cpu_ms_per_msg']} "
            f"| {f['before']} / {f['after']} ({f['spread'] * 100:.1f} %) "
            f"| {r['ratio_cpu_to_floor']} | {r['cores_of_crypto']} "
            f"| {lat['p50_ms']} / {lat['p99_ms']} ms at {lat['rate_msg_per_s']} msg/s ({lat['samples']} samples) "
            f"| {' '.join(map(str, r['load_average']['before']))} → {' '.join(map(str, r['load_average']['after']))} |"
        )
    return rows


def update_readme(results: list[dict[str, Any]], readme: Path = ROOT / "README.md") -> bool:
    """Replace the rows between the full-path markers of ``readme``; False when the markers are missing."""
    text = readme.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return False
    rows = "\n".join(readme_rows(results))
    readme.write_text(text[: start + len(README_BEGIN)] + "\n" + rows + "\n" + text[end:])
    return True


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a run (shared with ``run_suite.py``)."""
    p.add_argument("--messages", type=int, default=1000, help="messages of the peak (closed-loop) run")
    p.add_argument("--latency-messages", type=int, default=2000, help="messages (samples) of the open-loop run")
    p.add_argument("--rate", type=float, default=0.0, help="open-loop rate in msg/s (default: half the peak)")
    p.add_argument("--concurrency", type=int, default=32, help="submissions in flight in the peak run")
    p.add_argument("--size", type=int, default=8192, help="approximate size of the signed submission in bytes")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument(
        "--intake-processes",
        type=int,
        default=None,
        help="[gateway] intake_processes of the node (default: the gateway's default)",
    )
    p.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="[gateway] cpu_threads of the node (default: the gateway's default)",
    )
    p.add_argument("--dsn", default=os.environ.get("NSWGW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument(
        "--workdir",
        default=None,
        help="keep the store, configuration and logs here (an earlier run's store there is replaced)",
    )
    p.add_argument(
        "--store-dsn",
        default=None,
        help="PostgreSQL: run in this migrated schema (a DSN with search_path) and keep it, instead of a fresh one",
    )


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["partner"]:
        p = argparse.ArgumentParser()
        p.add_argument("--name", required=True)
        p.add_argument("--pki", required=True)
        p.add_argument("--verify", action="store_true")
        a = p.parse_args(argv[1:])
        return run_partner(a.name, a.pki, a.verify)
    if argv[:1] == ["client"]:
        p = argparse.ArgumentParser()
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--bodies", required=True)
        p.add_argument("--tag", required=True)
        p.add_argument("--concurrency", type=int, required=True)
        p.add_argument("--rate", type=float, required=True)
        a = p.parse_args(argv[1:])
        return run_client(a.port, a.bodies, a.tag, a.concurrency, a.rate)
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(p)
    p.add_argument("--quick", action="store_true", help="a short run (60 peak, 100 latency messages) for tests")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--readme", action="store_true", help="regenerate the README's full-path table from the result")
    p.add_argument(
        "--suite-json",
        default=None,
        help="also store the result as full_path in this run_suite.py results file (benchmarks/results.json)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.messages, args.latency_messages = min(args.messages, 60), min(args.latency_messages, 100)
    result = asyncio.run(run(args))
    print("\n".join(table_lines(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.suite_json:
        suite = Path(args.suite_json)
        report = json.loads(suite.read_text()) if suite.exists() else {}
        report["full_path"] = result
        suite.write_text(json.dumps(report, indent=2) + "\n")
    if args.readme and not update_readme([result]):
        raise SystemExit(f"README.md has no {README_BEGIN} ... {README_END} block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
