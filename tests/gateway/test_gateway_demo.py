"""``nswgw demo`` runs end to end on loopback: every message reaches every destination, the flaky partner is
retried, and signatures are verified on both sides (submissions by the gateway, the gateway's signature by
the partners, the partners' signed receipts by the gateway)."""

from __future__ import annotations

import pytest

from gateway.dev.demo import run_demo, summary_table

pytestmark = [pytest.mark.slow]


async def test_demo_delivers_everything_signed_and_verified_despite_a_partner_that_is_down_for_a_while() -> None:
    result = await run_demo(
        messages=40, size=4096, flaky_seconds=0.0, flaky_requests=5, progress=False, synchronous="NORMAL"
    )
    assert result.messages == 40
    # 32 e-C/O (to TH or ID, and to customs), 4 registrations (to MARD), 4 permits in reply (to customs)
    assert result.deliveries == {"TH": 16, "ID": 16, "CUSTOMS": 36, "MARD": 4}
    assert sum(result.dead.values()) == 0
    assert result.retries["TH"] == 5
    assert result.submissions_verified == 40
    assert result.partner_verified == result.deliveries
    assert all(not failures for failures in result.partner_verify_failures.values())
    assert result.receipts_verified == result.deliveries
    table = summary_table(result)
    assert table.splitlines()[0].split() == ["destination", "delivered", "retried", "dead", "p50", "p99"]


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
    assert result.deliveries == {"TH": 7, "ID": 9, "CUSTOMS": 18, "MARD": 2}
    assert result.submissions_verified == 0 and sum(result.partner_verified.values()) == 0
