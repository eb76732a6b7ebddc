"""``nswgw demo`` runs end to end on loopback: every message reaches every destination, the flaky partner retried."""

from __future__ import annotations

from gateway.demo import run_demo, summary_table


async def test_demo_delivers_everything_despite_a_partner_that_is_down_for_a_while() -> None:
    result = await run_demo(messages=40, size=512, flaky_seconds=0.0, flaky_requests=5, progress=False, synchronous="NORMAL")
    assert result.messages == 40
    # 32 e-C/O (to TH or ID, and to customs), 4 registrations (to MARD), 4 permits in reply (to customs)
    assert result.deliveries == {"TH": 16, "ID": 16, "CUSTOMS": 36, "MARD": 4}
    assert sum(result.dead.values()) == 0
    assert result.retries["TH"] == 5
    table = summary_table(result)
    assert table.splitlines()[0].split() == ["destination", "delivered", "retried", "dead", "p50", "p99"]
