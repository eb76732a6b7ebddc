"""Intake in worker processes (``[gateway] intake_processes``): a real gateway whose verification, mapping and
signing run in two spawned processes delivers and verifies exactly what the same gateway does with threads (same
signed bytes, same mapped JSON, same history, same refusal codes), on SQLite and PostgreSQL; a reload, a
reference-list version stored after start and an HSM key reach every worker; a killed worker fails only the
submission it held (``INTAKE_WORKER_LOST``, nothing stored) and the next one succeeds.

Real components throughout: the dev PKI's RSA keys (PKCS#1 v1.5 signatures are deterministic, so equal inputs give
equal bytes), loopback partners that verify the gateway's signature, both stores, a SoftHSM2 token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from gateway.api import Gateway
from gateway.config import Config
from gateway.errors import ConfigError
from gateway.intake_pool import ProcessIntake, _Undelivered, _Worker
from gateway.model import Message, PartyId, State, SubmissionEnvelope
from gateway.reference import ReferenceDraft, ReferenceEntry, publish_by_operator
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.mappings import form_d
from helpers.ocsp import OcspResponder
from helpers.stores import STORE_PARAMS, store_settings
from mappings.registry import get as get_format
from signing.dev.hsm import SOFTHSM2_MODULE
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.policy import VerifyPolicy
from signing.sign import sign_document
from signing.trust import PinnedCertificate, TrustStore

FORM_D = get_format("form-d").emit(form_d(items=2))
NUMBER = b"VN-SG-24-00001"
HSM_TOKEN = "nswgw-intake"
HSM_PIN_ENV = "NSWGW_TEST_INTAKE_HSM_PIN"


def _signed(pki: DevPki, n: int, *, document: bytes = FORM_D, signer: str = "moit") -> bytes:
    """MOIT's Form D numbered ``n`` (each its own content: the gateway refuses a replayed signed document)."""
    moit = pki.party(signer)
    body = document.replace(NUMBER, f"VN-SG-24-{n:05d}".encode())
    return sign_document(body, SoftwareSigner(moit.key, moit.cert, [pki.issuing_cert]))


def _partner(pki: DevPki, gateway_cert: x509.Certificate | None = None) -> Receiver:
    cert = gateway_cert if gateway_cert is not None else pki.party("nsw-gateway").cert
    return Receiver(verify_with=(TrustStore("nsw-gateway", pinned=(PinnedCertificate(cert),)), VerifyPolicy()))


def _config(
    tmp_path: Path,
    pki: DevPki,
    urls: dict[str, str],
    processes: int,
    *,
    store: dict[str, Any] | None = None,
    moit_cert: Path | None = None,
    keys: list[dict[str, Any]] | None = None,
    moit_trust: dict[str, Any] | None = None,
) -> Config:
    """MOIT's signed Form D (``format = "form-d"``) to TH (form-d, signed) and CUSTOMS (harmonized JSON, unsigned)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    pinned = {"trust": {"pinned": [{"certificate": str(moit_cert or pki.party("moit").cert_path)}]}}
    gw_key = pki.party("nsw-gateway")
    return make_config(
        tmp_path,
        urls,
        parties={
            "MOIT": {**(pinned if moit_trust is None else {"trust": moit_trust}), "format": "form-d"},
            "MARD": pinned,
            "TRADER": pinned,
        },
        per_destination={
            "TH": {"format": "form-d"},
            "CUSTOMS": {"format": "json", "signing": {"profile": "none"}},
        },
        gateway={"verification": "signature", "signing": "on", "intake_processes": processes},
        extra={
            "signing": {"keys": keys or [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]},
            **(store or {}),
        },
    )


async def _run(
    tmp_path: Path, pki: DevPki, kind: str, processes: int, documents: list[bytes]
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]], Receiver, Receiver]:
    """Submit ``documents`` through a gateway with ``processes`` intake processes on a fresh store of ``kind``;
    the replies, the stored records and the two partners once every accepted one is delivered."""
    th, customs = await _partner(pki).start(), await Receiver().start()
    try:
        async with AsyncExitStack() as stack:
            settings = await store_settings(stack, kind)
            config = _config(tmp_path, pki, {"TH": th.url, "CUSTOMS": customs.url}, processes, store=settings)
            gw = await stack.enter_async_context(Gateway(config))
            assert isinstance(gw.broker.intake, ProcessIntake) == (processes > 0)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            replies = [
                await submit(session, gw.url, "MOIT", f"ECO-{i}", "eco.form_d", body)
                for i, body in enumerate(documents)
            ]
            ids = [(body.get("ack") or body)["id"] for _, body in replies]

            async def settled() -> bool:  # every accepted message's receipts recorded, from both destinations
                for i in ids:
                    r = await gw.store.get(i)
                    acked = {h.destination for h in r.history if h.to_state == State.ACKNOWLEDGED} if r else set()
                    if r is None or (r.state != State.REJECTED and acked != {"TH", "CUSTOMS"}):
                        return False
                return True

            await eventually(settled)
            records = []
            for i in ids:
                record = await gw.store.get(i)
                assert record is not None
                intake = [(h.from_state, h.to_state, h.code, h.detail) for h in record.history if h.destination is None]
                deliveries = sorted((h.destination or "", h.to_state.value) for h in record.history if h.destination)
                records.append({"state": record.state, "intake": intake, "deliveries": deliveries})
    finally:
        await th.stop()
        await customs.stop()
    return replies, records, th, customs


@pytest.mark.parametrize("kind", STORE_PARAMS)
async def test_submissions_through_two_intake_processes_are_delivered_and_verified_as_through_threads(
    tmp_path: Path, dev_pki: DevPki, kind: str
) -> None:
    """Prerequisite: the same signed Form D submissions (two valid, one whose HS code the form-d rules refuse)
    through a gateway with threads and one with two intake processes. Predicate: the same acknowledgements, the
    same refusal (code, field, issues), the same history, byte-identical signed TH deliveries that TH verifies
    against the gateway's certificate, and the same harmonized JSON to CUSTOMS."""
    invalid = FORM_D.replace(b"030617", b"03x617", 1)
    documents = [_signed(dev_pki, 1), _signed(dev_pki, 2), _signed(dev_pki, 3, document=invalid)]
    threads = await _run(tmp_path / "threads", dev_pki, kind, 0, documents)
    pool = await _run(tmp_path / "pool", dev_pki, kind, 2, documents)
    for (t_status, t_body), (p_status, p_body) in zip(threads[0], pool[0], strict=True):
        assert t_status == p_status
        t_ack, p_ack = t_body.get("ack", t_body), p_body.get("ack", p_body)
        assert (t_ack["state"], t_ack["destinations"]) == (p_ack["state"], p_ack["destinations"])
    assert [s for s, _ in pool[0]] == [202, 202, 422]
    t_error, p_error = threads[0][2][1]["error"], pool[0][2][1]["error"]
    assert p_error["code"] == "VALIDATION_FAILED"
    assert {k: v for k, v in p_error.items() if k != "incident_id"} == {
        k: v for k, v in t_error.items() if k != "incident_id"
    }
    assert threads[1] == pool[1]
    t_th, p_th = threads[2], pool[2]
    assert sorted(r["body"] for r in p_th.requests) == sorted(r["body"] for r in t_th.requests)
    assert len(p_th.verified) == 2 and all(v.startswith("CN=nsw-gateway") for v in p_th.verified)
    assert sorted(r["body"] for r in pool[3].requests) == sorted(r["body"] for r in threads[3].requests)


async def test_reload_reaches_every_intake_process_before_its_next_submission(tmp_path: Path, dev_pki: DevPki) -> None:
    """Prerequisite: two intake processes, each having processed a submission; the configuration is reloaded
    with MOIT's pinned certificate replaced by MARD's. Predicate: the next submissions, whichever process takes
    them, are refused for their signer (the new trust), and the process that built its verifier from the first
    configuration does not accept one."""
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    urls = {"TH": th.url, "CUSTOMS": customs.url}
    try:
        config = _config(tmp_path, dev_pki, urls, 2)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            for n in (1, 2):
                status, ack = await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n))
                assert status == 202, ack
            gw.reconfigure(_config(tmp_path, dev_pki, urls, 2, moit_cert=dev_pki.party("mard").cert_path))
            refused = [
                await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n)) for n in (3, 4, 5)
            ]
    finally:
        await th.stop()
        await customs.stop()
    assert [status for status, _ in refused] == [403, 403, 403], refused
    assert {(body["error"]["code"], body["ack"]["state"]) for _, body in refused} == {("CERT_UNTRUSTED", "REJECTED")}


def _gone(pid: int) -> bool:
    """The process has exited (no longer running: a zombie not yet reaped counts as gone; reaped between opening its
    stat file and reading it, the read fails with ESRCH)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


async def test_killed_intake_process_fails_only_its_submission_and_the_next_succeeds(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: two intake processes, both stopped (SIGSTOP) so that a submission sits in one; then both are
    killed. Predicate: that submission is answered 503 ``INTAKE_WORKER_LOST`` and nothing of it is stored (the
    same message id is accepted afterwards as new); the processes are replaced and the next submissions are
    accepted and delivered."""
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            pool = gw.broker.intake
            assert isinstance(pool, ProcessIntake)
            old = pool.pids
            assert len(old) == 2
            for pid in old:
                os.kill(pid, signal.SIGSTOP)
            held = asyncio.create_task(submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", _signed(dev_pki, 1)))
            await eventually(lambda: pool.busy == 1)
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            status, body = await held
            assert status == 503, body
            assert (body["error"]["code"], body["error"]["origin"]) == ("INTAKE_WORKER_LOST", "gateway")
            # the other worker is gone too before anything else is sent: a submission dispatched in the instant a
            # worker dies is lost with it (503, retryable), which is the case above, not the one below
            await eventually(lambda: all(_gone(pid) for pid in old))
            for n, message_id in ((1, "ECO-1"), (2, "ECO-2"), (3, "ECO-3")):
                status, ack = await submit(s, gw.url, "MOIT", message_id, "eco.form_d", _signed(dev_pki, n))
                assert status == 202, ack  # ECO-1 again: new, not a duplicate of anything stored
            # bounded waits for what a loaded machine makes slow: starting the replacement processes
            await eventually(lambda: len(th.processed) == 3 and len(customs.processed) == 3, limit=180)
            await eventually(lambda: len(pool.pids) == 2, limit=180)
            assert not set(pool.pids) & set(old)
    finally:
        await th.stop()
        await customs.stop()


async def test_intake_processes_killed_while_idle_are_replaced_before_any_submission_needs_them(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: two idle intake processes, both killed (SIGKILL). Predicate: both are replaced without a
    submission having to find them dead (their ends are watched), and the submissions sent after are accepted and
    delivered: a process that held no submission fails none."""
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            pool = gw.broker.intake
            assert isinstance(pool, ProcessIntake)
            old = pool.pids
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            await eventually(lambda: len(pool.pids) == 2 and not set(pool.pids) & set(old), limit=180)
            for n in (1, 2, 3):
                status, ack = await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n))
                assert status == 202, ack
            await eventually(lambda: len(th.processed) == 3 and len(customs.processed) == 3)
            assert pool.busy == 0
    finally:
        await th.stop()
        await customs.stop()


def test_request_to_an_intake_process_that_has_ended_is_undelivered_not_lost(tmp_path: Path, dev_pki: DevPki) -> None:
    """Prerequisite: one intake process, killed and ended. Predicate: a request written to it is reported as never
    delivered (the pool then hands the submission to another process), not as a submission it lost."""
    config = _config(tmp_path, dev_pki, {"TH": "http://127.0.0.1:9", "CUSTOMS": "http://127.0.0.1:9"}, 1)
    worker = _Worker(config, 0, 0)
    try:
        worker.ready()
        assert not worker.exited()
        assert worker.process.pid is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not worker.exited() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.exited()
        with pytest.raises(_Undelivered):
            worker.call(b"request")
    finally:
        worker.close()


async def test_cancelled_submission_keeps_its_process_until_it_has_answered(tmp_path: Path, dev_pki: DevPki) -> None:
    """Prerequisite: two intake processes, both stopped (SIGSTOP); a submission handed to one is cancelled (its
    caller gone), then the processes go on (SIGCONT). Predicate: that process serves again only after its answer
    to the cancelled submission came back: each of the next submissions gets its own message back, accepted and
    delivered."""
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            pool = gw.broker.intake
            assert isinstance(pool, ProcessIntake)
            for pid in pool.pids:
                os.kill(pid, signal.SIGSTOP)
            envelope = SubmissionEnvelope(PartyId("MOIT"), "ECO-GONE", "eco.form_d", format="form-d")
            gone = asyncio.create_task(
                pool.process(Message.receive(envelope, at=time.time()), [_signed(dev_pki, 99)], [])
            )
            await eventually(lambda: pool.busy == 1)
            gone.cancel()
            with pytest.raises(asyncio.CancelledError):
                await gone
            assert pool.busy == 1  # still holding the cancelled submission's answer
            for pid in pool.pids:
                os.kill(pid, signal.SIGCONT)
            await eventually(lambda: pool.busy == 0)
            for n in (1, 2, 3, 4):
                status, ack = await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n))
                assert status == 202 and ack["message_id"] == f"ECO-{n}", ack
            await eventually(lambda: len(th.processed) == 4 and len(customs.processed) == 4)
    finally:
        await th.stop()
        await customs.stop()
    assert len(th.verified) == 4 and all(v.startswith("CN=nsw-gateway") for v in th.verified)


async def test_reference_list_version_stored_after_start_is_checked_in_the_intake_processes(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    """Prerequisite: two intake processes; after a first accepted submission, a ``prohibited`` list naming the
    Form D's HS code (03...) is written straight to the store. Predicate: the next submissions, whichever process
    takes them, are refused ``VALIDATION_FAILED`` with ``GOODS_PROHIBITED`` on both goods items, naming the list
    version."""
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", _signed(dev_pki, 1))
            assert status == 202, ack
            draft = ReferenceDraft(
                "import-prohibited.moit", "MOIT", "prohibited", time.time() - 60, (ReferenceEntry("03"),)
            )
            await publish_by_operator(gw.store, draft, operator="cli:test", at=time.time(), parties=["MOIT"])
            refused = [await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n)) for n in (2, 3)]
    finally:
        await th.stop()
        await customs.stop()
    for status, body in refused:
        assert status == 422, body
        assert body["error"]["code"] == "VALIDATION_FAILED"
        assert body["error"]["details"]["reference_lists"] == ["import-prohibited.moit v1"]
        assert [(i["path"], i["code"]) for i in body["error"]["issues"]] == [
            ("goods[0].hs_code", "GOODS_PROHIBITED"),
            ("goods[1].hs_code", "GOODS_PROHIBITED"),
        ]


async def test_ocsp_revocation_is_checked_in_the_intake_processes(
    tmp_path: Path, dev_pki: DevPki, ocsp_responder: OcspResponder
) -> None:
    """Prerequisite: MOIT's trust checks OCSP (a real openssl responder on loopback); two intake processes, each
    with its own verifier and revocation cache (``soft_fail``: the responder answers for the leaves only).
    Predicate: submissions signed by a revoked signer are refused ``CERT_REVOKED`` whichever process takes them,
    and those of a good signer are accepted."""
    from signing.dev.pki import DEFAULT_ORGANIZATION, generate_key

    for name in ("moit-intake-good", "moit-intake-revoked"):
        dev_pki.issue(name, key=generate_key("p256"))
    dev_pki.revoke("moit-intake-revoked", reason="key_compromise")
    trust = {
        "anchors": [str(dev_pki.root_cert_path)],
        "intermediates": [str(dev_pki.issuing_cert_path)],
        "signers": [
            {"subject": {"CN": n, "O": DEFAULT_ORGANIZATION}} for n in ("moit-intake-good", "moit-intake-revoked")
        ],
        "ocsp": True,
        "ocsp_responder": ocsp_responder.url,
        "soft_fail": True,  # the loopback responder answers for the leaves only, not for the issuing CA
    }
    th, customs = await _partner(dev_pki).start(), await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2, moit_trust=trust)
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            replies = [
                await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n, signer=signer))
                for n, signer in enumerate(["moit-intake-revoked", "moit-intake-good"] * 2)
            ]
    finally:
        await th.stop()
        await customs.stop()
    assert [status for status, _ in replies] == [403, 202, 403, 202], replies
    assert [replies[i][1]["error"]["code"] for i in (0, 2)] == ["CERT_REVOKED", "CERT_REVOKED"]


@pytest.mark.parametrize(("value", "message"), [(-1, "greater than or equal to 0"), (65, "less than or equal to 64")])
def test_intake_processes_out_of_range_is_a_config_error_naming_the_field(
    tmp_path: Path, dev_pki: DevPki, value: int, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, dev_pki, {"TH": "http://127.0.0.1:9/x", "CUSTOMS": "http://127.0.0.1:9/y"}, value)
    assert err.value.field == "gateway.intake_processes"
    assert message in str(err.value)


# --------------------------------------------------------------------------- an HSM key in every worker


@pytest.fixture(scope="module")
def hsm_token(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Iterator[Path]:
    """A fresh SoftHSM2 token with an RSA-2048 gateway key (label gw-rsa); its certificate's path."""
    import pkcs11

    assert Path(SOFTHSM2_MODULE).is_file(), "apt-get install softhsm2 (scripts/test does it)"
    directory = tmp_path_factory.mktemp("intake-hsm")
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "hsm-init", str(directory), "--pki", str(dev_pki.directory)]
        + ["--token", HSM_TOKEN, "--pin-env", "NSWGW_HSM_INIT_PIN", "--common-name", "nsw-gateway-hsm"]
        + ["--label", "gw-rsa", "--id", "01"],
        capture_output=True,
        text=True,
        env={**os.environ, "NSWGW_HSM_INIT_PIN": "4711-test"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(directory / "softhsm2.conf"))  # inherited by the spawned workers
        mp.setenv(HSM_PIN_ENV, "4711-test")
        pkcs11.lib(SOFTHSM2_MODULE).reinitialize()  # SoftHSM2 reads SOFTHSM2_CONF at C_Initialize
        yield directory / "gw-rsa.pem"


async def test_hsm_key_signs_the_deliveries_made_in_the_intake_processes(
    tmp_path: Path, dev_pki: DevPki, hsm_token: Path
) -> None:
    """Prerequisite: the gateway's signing key is a PKCS#11 key of a SoftHSM2 token; two intake processes, each
    opening its own session. Predicate: deliveries signed in either process verify at TH against the token's
    certificate."""
    hsm_cert = x509.load_pem_x509_certificates(hsm_token.read_bytes())[0]
    th, customs = await _partner(dev_pki, hsm_cert).start(), await Receiver().start()
    key = {"module": SOFTHSM2_MODULE, "token": HSM_TOKEN, "key_label": "gw-rsa", "pin_env": HSM_PIN_ENV}
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url, "CUSTOMS": customs.url}, 2, keys=[{"pkcs11": key}])
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            for n in (1, 2, 3, 4):
                status, ack = await submit(s, gw.url, "MOIT", f"ECO-{n}", "eco.form_d", _signed(dev_pki, n))
                assert status == 202, ack
            await eventually(lambda: len(th.processed) == 4)
    finally:
        await th.stop()
        await customs.stop()
    assert len(th.verified) == 4 and all(v.startswith("CN=nsw-gateway-hsm") for v in th.verified), th.verified
