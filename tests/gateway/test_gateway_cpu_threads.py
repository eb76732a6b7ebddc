"""The gateway's CPU threads (``[gateway] cpu_threads``, :mod:`gateway.cpu`): a real gateway verifying MOIT-signed
Form D submissions, signing its deliveries and verifying the partner's signed receipts runs all of that crypto in
its own pool of exactly that many threads, never in Python's default executor."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.config import Config
from gateway.cpu import THREAD_NAME_PREFIX, CpuThreads
from gateway.errors import ConfigError
from gateway.model import State
from gateway.ports import Receipt
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.mappings import form_d
from helpers.ocsp import dev_pki  # noqa: F401
from mappings.registry import get as get_format
from signing.dev.pki import DEFAULT_ORGANIZATION, DevPki
from signing.keys import SoftwareSigner
from signing.sign import sign_document


def _signer(pki: DevPki, name: str) -> SoftwareSigner:
    party = pki.party(name)
    return SoftwareSigner(party.key, party.cert, [pki.issuing_cert])


def _signed_eco(pki: DevPki, n: int) -> bytes:
    doc = form_d(items=2, document=form_d().document.model_copy(update={"number": f"VN-SG-24-{n:05d}"}))
    return sign_document(get_format("form-d").emit(doc), _signer(pki, "moit"))


def _config(tmp_path: Path, pki: DevPki, url: str, **gateway: Any) -> Config:
    def pinned(name: str) -> dict[str, Any]:
        return {"pinned": [{"certificate": str(pki.party(name).cert_path)}]}

    def anchored(name: str) -> dict[str, Any]:  # parties this test never hears from still need their trust
        return {
            "anchors": [str(pki.root_cert_path)],
            "intermediates": [str(pki.issuing_cert_path)],
            "signers": [{"subject": {"CN": name, "O": DEFAULT_ORGANIZATION}}],
        }

    return make_config(
        tmp_path,
        {"TH": url},
        parties={
            "MOIT": {"trust": pinned("moit"), "format": "form-d"},
            "MARD": {"trust": anchored("mard")},
            "TRADER": {"trust": anchored("trader")},
        },
        per_destination={"TH": {"receipt": "signed", "trust": pinned("th-asw")}},
        gateway={"verification": "signature", "signing": "on", **gateway},
        extra={"signing": {"keys": [{"pkcs12": str(pki.party("nsw-gateway").p12_path), "password": "changeit"}]}},
    )


class _Watch:
    """Which threads ran the wrapped calls, and how many ran at once."""

    def __init__(self, hold: float = 0.0, barrier: threading.Barrier | None = None) -> None:
        self.ran_in: list[threading.Thread] = []
        """The thread of each call, in order."""
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        self._hold = hold
        self._barrier = barrier

    @property
    def threads(self) -> list[str]:
        """The name of the thread of each call, in order."""
        return [t.name for t in self.ran_in]

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.ran_in.append(threading.current_thread())
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self._barrier is not None:
                self._barrier.wait()
            if self._hold:
                threading.Event().wait(self._hold)
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


class _WatchedVerifier:
    def __init__(self, inner: Any, watch: _Watch) -> None:
        self._inner, self._watch = inner, watch

    def verify(self, *args: Any, **kwargs: Any) -> Any:
        return self._watch.call(self._inner.verify, *args, **kwargs)


class _WatchedReceipts:
    def __init__(self, inner: Any, watch: _Watch) -> None:
        self._inner, self._watch = inner, watch

    def signed(self, destination: str) -> bool:
        return bool(self._inner.signed(destination))

    def verify(self, receipt: Receipt, message_id: str, destination: str, *, payload: bytes = b"") -> bytes:
        return bytes(self._watch.call(self._inner.verify, receipt, message_id, destination, payload=payload))


async def _submit_all(gw: Gateway, pki: DevPki, n: int) -> list[str]:
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> str:
            status, ack = await submit(s, gw.url, "MOIT", f"ECO-{i}", "eco.form_d", _signed_eco(pki, i))
            assert status == 202, ack
            return str(ack["id"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _acknowledged(gw: Gateway, ids: list[str]) -> None:
    async def done() -> bool:
        records = [await gw.store.get(i) for i in ids]
        return all(r is not None and r.deliveries[0].state is State.ACKNOWLEDGED for r in records)

    await eventually(done)


async def test_one_cpu_thread_runs_every_verification_and_signed_receipt_one_at_a_time(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    th = await Receiver(receipt_signer=_signer(dev_pki, "th-asw")).start()
    intake, receipts = _Watch(hold=0.05), _Watch()
    try:
        async with Gateway(_config(tmp_path, dev_pki, th.url, cpu_threads=1)) as gw:
            gw.broker.verifier = _WatchedVerifier(gw.broker.verifier, intake)
            worker = gw.engine.workers["TH"]
            worker.receipts = _WatchedReceipts(worker.receipts, receipts)
            ids = await _submit_all(gw, dev_pki, 6)
            await _acknowledged(gw, ids)
            record = await gw.store.get(ids[0])
    finally:
        await th.stop()
    assert record is not None and b"<ds:Signature" in (record.deliveries[0].receipt or b"")
    assert len(intake.threads) == 6 and len(receipts.threads) == 6
    assert set(intake.threads) | set(receipts.threads) == {f"{THREAD_NAME_PREFIX}_0"}
    assert intake.most == 1  # six submissions at once, one thread: one after the other
    assert len(th.requests) == 6


async def test_three_cpu_threads_verify_three_submissions_at_once_and_end_with_the_gateway(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    th = await Receiver(receipt_signer=_signer(dev_pki, "th-asw")).start()
    intake = _Watch(barrier=threading.Barrier(3, timeout=20))  # passes only with three verifications at once
    try:
        async with Gateway(_config(tmp_path, dev_pki, th.url, cpu_threads=3)) as gw:
            gw.broker.verifier = _WatchedVerifier(gw.broker.verifier, intake)
            ids = await _submit_all(gw, dev_pki, 3)
            await _acknowledged(gw, ids)
            cpu = gw.cpu
    finally:
        await th.stop()
    assert intake.most == 3 and len(set(intake.threads)) == 3
    assert all(name.startswith(f"{THREAD_NAME_PREFIX}_") for name in intake.threads)
    await eventually(lambda: not any(t.is_alive() for t in intake.ran_in))
    assert await cpu.run(threading.current_thread) is not threading.current_thread()  # a stopped pool starts again
    cpu.close()


async def test_cpu_threads_carry_the_callers_context_variables() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    var.set("incident-1")
    cpu = CpuThreads(1)
    try:
        assert await cpu.run(var.get) == "incident-1"
    finally:
        cpu.close()


@pytest.mark.parametrize("value", [0, -1, 65])
def test_cpu_threads_out_of_range_is_a_config_error_naming_the_key(tmp_path: Path, value: int) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, {"TH": "http://127.0.0.1:9/x"}, gateway={"cpu_threads": value})
    assert err.value.field == "gateway.cpu_threads"
