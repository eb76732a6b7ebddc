"""``nswgw demo`` runs end to end on loopback: every message reaches every destination, the flaky partner is
retried, and signatures are verified on both sides (submissions by the gateway, the gateway's signature by
the partners, the partners' signed receipts by the gateway)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.dev.demo import (
    MINISTRY_KEYS,
    PARTNER_KEYS,
    REJECTION,
    DemoResult,
    demo_pki,
    lifecycle_lines,
    run_demo,
    summary_table,
)

pytestmark = [pytest.mark.slow]


async def test_demo_delivers_everything_signed_and_verified_despite_a_partner_that_is_down_for_a_while(
    tmp_path: Path,
) -> None:
    result = await run_demo(
        messages=40,
        size=4096,
        flaky_seconds=0.0,
        flaky_requests=5,
        progress=False,
        synchronous="NORMAL",
        store_dir=tmp_path,
    )
    assert result.messages == 40
    # 28 e-C/O (to TH or ID, and to customs), 4 registrations (to MARD), 4 permits in reply (to customs),
    # 2 ACDDs (to the Thai customs) and the 2 Customs Responses in reply (to customs); then the Thai side's 7
    # notifications about 4 of the e-C/O TH received (3 received and utilized, 1 rejected), to MOIT's inbox
    assert result.deliveries == {"TH": 13, "ID": 15, "CUSTOMS": 34, "MARD": 4, "TH-CUSTOMS": 2, "MOIT-BOX": 7}
    assert result.acdd_declarations == 2
    assert result.customs_responses == {"accepted": 1, "query": 1}
    assert sum(result.dead.values()) == 0
    assert result.retries["TH"] == 5
    assert result.submissions_verified == 40 + 7
    assert result.partner_verified == result.deliveries
    assert all(not failures for failures in result.partner_verify_failures.values())
    assert result.receipts_verified == result.deliveries
    table = summary_table(result)
    assert table.splitlines()[0].split() == ["destination", "delivered", "retried", "dead", "p50", "p99"]
    await _check_lifecycle(result, tmp_path, utilized=3)


async def _check_lifecycle(result: DemoResult, store_dir: Path, *, utilized: int) -> None:
    """The lifecycle the demo prints is MOIT's view from the gateway's API (``GET /v1/certificates/VN/...``, its
    answers in ``result.certificates``), and that view is what the gateway's store recorded."""
    from gateway.store.sqlite import SqliteStore

    views = result.certificates
    assert sorted(str(v["status"]) for v in views.values()) == ["rejected"] + ["utilized"] * utilized
    lines = lifecycle_lines(result)
    assert (
        lines[0]
        == f"e-Form D lifecycle, as MOIT sees it (GET /v1/certificates/VN/...): {utilized} utilized, 1 rejected"
    )
    store = SqliteStore(store_dir / "gateway.db", synchronous="NORMAL")
    await store.open()
    try:
        for (number, view), line in zip(views.items(), lines[1:], strict=True):
            assert (view["issuing_country"], view["number"], view["issuer"]) == ("VN", number, "MOIT")
            record = await store.certificate("VN", number)
            assert record is not None and record.status == view["status"], (number, view)
            steps = [(e["status"], e["party"], e["message"]) for e in view["history"] if e["status"] != "delivered"]
            assert steps == [(e.status, e.party, e.message) for e in record.history if e.status != "delivered"]
            assert {e["party"] for e in view["history"] if e["status"] == "delivered"} == {"TH", "CUSTOMS"}
            if view["status"] == "utilized":
                assert [s for s, _, _ in steps] == ["issued", "received", "utilized"]
                declaration = next(e for e in view["history"] if e["status"] == "utilized")["detail"]
                assert line == (
                    f"  {number}  utilized by TH-ASW  (declaration {declaration['declaration_number']} of "
                    f"{declaration['declaration_date']})"
                )
            else:
                assert [s for s, _, _ in steps] == ["issued", "rejected"]
                detail = next(e for e in view["history"] if e["status"] == "rejected")["detail"]
                assert (detail["reason_code"], detail["reason"]) == REJECTION
                assert line == f"  {number}  rejected by TH-ASW  ({REJECTION[0]}: {REJECTION[1]})"
    finally:
        await store.close()


async def test_demo_baseline_with_verification_and_signing_off_still_delivers_everything() -> None:
    result = await run_demo(
        messages=20,
        size=2048,
        verification="off",
        signing="off",
        flaky_seconds=0.0,
        progress=False,
        synchronous="NORMAL",
    )
    assert result.deliveries == {"TH": 7, "ID": 7, "CUSTOMS": 17, "MARD": 2, "TH-CUSTOMS": 1, "MOIT-BOX": 7}
    assert result.acdd_declarations == 1 and result.customs_responses == {"accepted": 1}
    assert result.submissions_verified == 0 and sum(result.partner_verified.values()) == 0
    assert sorted(str(v["status"]) for v in result.certificates.values()) == ["rejected"] + ["utilized"] * 3


def test_nswgw_demo_keeps_its_output_clean_and_writes_every_event_to_the_log_file(tmp_path: Path) -> None:
    """Predicate: ``nswgw demo --log-file`` prints no log line between its progress and its table (the partner
    that is down makes WARNING events), and the file holds one JSON object per line: an ``accepted`` event per
    message and the retries of the partner that was down. Its ship call reaches each of the five agencies once,
    the passport numbers only the three whose part holds them, the amendment only those, and the agent sees the
    call refused, then permitted."""
    log = tmp_path / "demo.log"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--messages",
            "12",
            "--flaky",
            "2",
            "--quiet",
            "--log-file",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and "retry_scheduled" not in run.stdout, (run.stdout, run.stderr)
    assert run.stdout.splitlines()[-1] == f"gateway log (JSON lines): {log}"
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    events = [r.get("event") for r in records]
    # the 12 messages, then the Thai side's notifications about 3 e-C/O TH received: 2 received and utilized, 1
    # rejected
    assert events.count("accepted") == 12 + 5
    notified = [r for r in records if r.get("event") == "accepted" and r.get("sender") == "TH-ASW"]
    assert len(notified) == 5 and {r.get("document_type") for r in notified} == {"eco.form_d.notification"}
    lines = run.stdout.splitlines()
    at = lines.index("e-Form D lifecycle, as MOIT sees it (GET /v1/certificates/VN/...): 2 utilized, 1 rejected")
    assert [line.split()[:2] for line in lines[at + 1 : at + 4]] == [
        ["VN-TH-26-00000", "utilized"],
        ["VN-TH-26-00002", "utilized"],
        ["VN-TH-26-00006", "rejected"],
    ]
    assert "retry_scheduled" in events and events.count("receipt_verified") >= 12
    at = next(i for i, line in enumerate(lines) if line.startswith("ship call SGN-2026-0417 "))
    assert lines[at + 1 : at + 4] == [
        "  PORT, BORDER, HEALTH, CUSTOMS, QUARANTINE: 1 delivery each; passport numbers only to PORT, BORDER, HEALTH",
        "  signed decisions: HEALTH refused (no medical officer on the crew list for 2 040 persons on board),"
        " 4 accepted; the crew change reached PORT, BORDER, HEALTH only; they accepted",
        "  agent notified: SUBMITTED -> PENDING_AGENCIES -> PORT_ENTRY_REFUSED -> PENDING_AGENCIES ->"
        " PORT_ENTRY_PERMITTED (GET /v1/ship-calls/SGN-2026-0417: PORT_ENTRY_PERMITTED)",
    ]


async def test_nswgw_demo_serve_prints_a_console_link_keeps_sending_and_stops_on_sigterm() -> None:
    """Predicate: ``nswgw demo --serve`` prints a one-time console link of its gateway and the operator's token; the
    link logs in, the token opens the operator API, where the ministries' trickle shows accepted messages and
    rejections with their code; SIGTERM stops it cleanly."""
    import asyncio
    import re
    import signal

    import aiohttp

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "demo",
        "--serve",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, f"nswgw demo --serve ended: {lines}"
            lines.append(line.strip())
        [link] = [
            m.group(0) for line in lines if (m := re.search(r"http://127\.0\.0\.1:\d+/console/login\?token=\S+", line))
        ]
        [token] = [line.split(": ", 1)[1] for line in lines if line.startswith("operator ops, token: ")]
        base = link.split("/console/", 1)[0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(link, allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/console/")
            admin = {"Authorization": f"Bearer {token}"}
            rejected: list[dict[str, object]] = []
            for _ in range(100):
                async with session.get(f"{base}/v1/admin/messages?state=REJECTED", headers=admin) as r:
                    assert r.status == 200
                    rejected = (await r.json())["messages"]
                if rejected:
                    break
                await asyncio.sleep(0.5)
            assert rejected and {m["error"]["code"] for m in rejected} == {"SIG_MISSING"}  # type: ignore[index]
            async with session.get(f"{base}/v1/admin/messages?sender=MOIT&limit=50", headers=admin) as r:
                assert len((await r.json())["messages"]) > len(rejected), "no accepted e-C/O"
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


def test_demo_pki_made_in_a_fresh_directory_holds_every_key_and_is_reused(tmp_path: Path) -> None:
    pki = demo_pki(tmp_path / "pki")
    assert set(pki.names) >= set(MINISTRY_KEYS) | set(PARTNER_KEYS.values())
    again = demo_pki(tmp_path / "pki")
    assert again.party("th-asw").cert == pki.party("th-asw").cert  # reused, not made again
