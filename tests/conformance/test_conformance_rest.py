"""The conformance kit's own tests: the framework, the rest-intermediary profile against our gateway, and
every defect of the broken reference peer caught by the case meant for it (and by no other)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from conformance.broken_peer import DEFECTS, SENDER_DEFECTS, BrokenSender
from conformance.model import Outcome, RunReport, parse_docstring
from conformance.pki import KitPki, prepare_pki
from conformance.registry import cases, profiles
from conformance.report import REPORT_FILES, write_reports
from conformance.runner import run_profile
from conformance.settings import RunOptions
from gateway.api import Gateway
from gateway.cli import main as nswgw
from gateway.config import Config, parse_config
from helpers.conformance import KIT_TOKEN, Sink, broken_peer, gateway_config, kit_settings
from signing.xml import ParserLimits, parse_xml

REST = "rest-intermediary"

# Cases our gateway does not pass yet, with why: strict xfail, so a gap that closes must leave this list.
GATEWAY_GAPS: dict[str, str] = {}


@pytest.fixture(scope="module")
def kit_pki(tmp_path_factory: pytest.TempPathFactory) -> KitPki:
    return prepare_pki(tmp_path_factory.mktemp("kit") / "pki")


def check_reports(
    report: RunReport, directory: Path, *, raw: str = "<!DOCTYPE lolz", escaped: str = "&lt;!DOCTYPE lolz"
) -> None:
    paths = write_reports(report, directory)
    assert {p.name for p in paths.values()} == set(REPORT_FILES.values())
    junit = parse_xml(paths["junit"].read_bytes(), limits=ParserLimits(max_bytes=64 * 1024 * 1024))
    suite = junit.find("testsuite")
    assert suite is not None and int(suite.get("tests")) == len(report.results)
    not_run = sum(r.outcome is Outcome.NOT_RUN for r in report.results)
    assert int(suite.get("skipped")) == not_run
    assert int(suite.get("failures")) + int(suite.get("errors")) + not_run == sum(not r.passed for r in report.results)
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [c["id"] for c in data["cases"]] == [r.case.id for r in report.results]
    page = paths["html"].read_text(encoding="utf-8")
    for r in report.results:
        assert r.case.id in page
    if raw:
        assert raw not in page and escaped in page  # attack payloads are escaped
    assert "<script" not in page.lower()


# ------------------------------------------------------------------------------------------ framework


def test_every_case_has_a_stable_id_prerequisite_and_predicate() -> None:
    all_cases = cases()
    assert len({c.id for c in all_cases}) == len(all_cases)
    for c in all_cases:
        assert c.prerequisite and c.predicate and c.title
        assert c.id.startswith(
            {
                "rest-intermediary": "NSW-REST-",
                "vnsw-ministry": "NSW-VNSW-",
                "asw-formd": "NSW-AS4-",
                "asw-acdd": "NSW-ACDD-",
            }[c.profile]
        )
    sender_ids = [c.id for c in cases(REST, role="sender")]
    assert sender_ids == [f"NSW-REST-TA{n:02d}" for n in range(len(sender_ids))]
    preflights = {c.profile: c.id for c in all_cases if c.preflight}
    assert preflights == {
        "rest-intermediary": "NSW-REST-TA00",
        "vnsw-ministry": "NSW-VNSW-TA00",
        "asw-formd": "NSW-AS4-TA00",
        "asw-acdd": "NSW-ACDD-TA00",
    }


def test_docstring_without_predicate_is_refused() -> None:
    with pytest.raises(ValueError, match="Predicate"):
        parse_docstring("Title.\n\n    Prerequisite: something.\n")
    assert parse_docstring("T.\n\n  Prerequisite: a\n   b.\n  Predicate: c.") == ("T.", "a b.", "c.")


def test_every_defect_names_a_case_of_its_profile() -> None:
    for profile_name, defects in DEFECTS.items():
        ids = {c.id for c in cases(profile_name)}
        assert set(defects.values()) <= ids
    assert {p.name for p in profiles()} >= set(DEFECTS)


async def test_unmet_prerequisite_is_a_failure_with_reason(kit_pki: KitPki, tmp_path: Path) -> None:
    async with broken_peer(kit_pki) as peer:
        settings = kit_settings(kit_pki).model_copy(update={"other_party": None, "pki": None})
        report = await run_profile(
            REST,
            RunOptions(target=peer.url, settings=settings),
            only=("NSW-REST-TA03", "NSW-REST-TA12", "NSW-REST-TA14"),
        )
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes["NSW-REST-TA03"].outcome is Outcome.FAIL
    assert outcomes["NSW-REST-TA03"].reason.startswith("prerequisite unmet: no PKI configured")
    assert outcomes["NSW-REST-TA12"].reason.startswith("prerequisite unmet: no other party")
    assert not report.passed


REST_SENDER_IDS = [c.id for c in cases(REST, role="sender") if not c.preflight]
"""Every sender case after the preflight (``NSW-REST-TA01``...), numbered without gaps (checked above)."""


def _statuses(report: RunReport) -> dict[str, str]:
    return {r.case.id: r.outcome.value for r in report.results}


async def test_target_down_is_one_preflight_failure_not_a_connection_error_per_case(kit_pki: KitPki) -> None:
    async with broken_peer(kit_pki) as peer:
        url = peer.url
    report = await run_profile(REST, RunOptions(target=url, settings=kit_settings(kit_pki), request_timeout=5))
    assert _statuses(report) == {"NSW-REST-TA00": "FAIL"} | dict.fromkeys(REST_SENDER_IDS, "NOT_RUN")
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": len(REST_SENDER_IDS)}
    preflight = report.result("NSW-REST-TA00")
    assert preflight.reason.startswith(f"the target is unreachable ({url}: ClientConnectorError")
    assert len([e for e in preflight.exchanges if e.direction == "sent"]) == 1  # one attempt, then the verdict
    for case_id in REST_SENDER_IDS:
        r = report.result(case_id)
        assert r.reason == f"not run: the preflight NSW-REST-TA00 did not pass: {preflight.reason}"
        assert not r.exchanges  # never attempted: no per-case connection error
    assert not report.passed


async def test_only_selected_cases_still_run_after_the_preflight(kit_pki: KitPki) -> None:
    async with broken_peer(kit_pki) as peer:
        url = peer.url
    report = await run_profile(
        REST, RunOptions(target=url, settings=kit_settings(kit_pki), request_timeout=5), only=("NSW-REST-TA01",)
    )
    assert _statuses(report) == {"NSW-REST-TA00": "FAIL", "NSW-REST-TA01": "NOT_RUN"}
    assert "the target is unreachable" in report.result("NSW-REST-TA01").reason


async def test_gateway_not_prepared_for_the_kit_party_fails_the_preflight_only(kit_pki: KitPki, tmp_path: Path) -> None:
    """Our gateway without [parties.CONFORMANCE]: one preflight failure naming it, every other case NOT_RUN."""
    config = gateway_config(tmp_path, kit_pki, "http://127.0.0.1:9/inbox", omit_parties=("CONFORMANCE",))
    async with Gateway(config) as gw:
        report = await run_profile(REST, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
    assert _statuses(report) == {"NSW-REST-TA00": "FAIL"} | dict.fromkeys(REST_SENDER_IDS, "NOT_RUN")
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": len(REST_SENDER_IDS)}
    preflight = report.result("NSW-REST-TA00")
    assert preflight.error_code == "AUTH_REQUIRED"
    assert preflight.reason == (
        "the gateway does not accept the kit's token for party CONFORMANCE (settings 'token'): add "
        "[parties.CONFORMANCE] tokens = [\"<settings 'token'>\"] (with its document_types and trust); "
        "see conformance/README.md#preparing-a-gateway"
    )
    assert {report.result(i).reason for i in REST_SENDER_IDS} == {
        f"not run: the preflight NSW-REST-TA00 did not pass: {preflight.reason}"
    }
    check_reports(report, tmp_path / "report", raw="", escaped="")
    junit = parse_xml((tmp_path / "report" / "junit.xml").read_bytes(), limits=ParserLimits(max_bytes=1 << 24))
    suite = junit.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        str(len(REST_SENDER_IDS) + 1),
        "1",
        "0",
        str(len(REST_SENDER_IDS)),
    )


async def test_gateway_not_accepting_the_other_party_token_fails_the_preflight(kit_pki: KitPki, tmp_path: Path) -> None:
    config = gateway_config(tmp_path, kit_pki, "http://127.0.0.1:9/inbox", omit_parties=("OTHER",))
    async with Gateway(config) as gw:
        report = await run_profile(REST, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
    assert report.counts() == {"PASS": 0, "FAIL": 1, "ERROR": 0, "NOT_RUN": len(REST_SENDER_IDS)}
    assert "for party OTHER (settings 'other_token'): add [parties.OTHER]" in report.result("NSW-REST-TA00").reason


async def test_wrong_target_url_is_named_by_the_preflight(kit_pki: KitPki, tmp_path: Path) -> None:
    async with Sink() as sink:  # an HTTP server that is no gateway: 404 on /v1/messages
        report = await run_profile(
            REST, RunOptions(target=f"http://127.0.0.1:{sink.port}", settings=kit_settings(kit_pki))
        )
    assert report.result("NSW-REST-TA00").reason.startswith("the target answers HTTP 404 on GET /v1/messages")
    assert report.counts()["NOT_RUN"] == len(REST_SENDER_IDS)


# ------------------------------------------------------------------------------------------ our gateway


async def test_rest_profile_passes_against_our_gateway(kit_pki: KitPki, tmp_path: Path) -> None:
    async with Sink() as sink, Gateway(gateway_config(tmp_path, kit_pki, sink.url)) as gw:
        report = await run_profile(REST, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
    check_reports(report, tmp_path / "report")
    failed = {r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed}
    assert set(failed) == set(GATEWAY_GAPS), failed
    assert len(report.results) == len(REST_SENDER_IDS) + 1 and report.results[0].case.id == "NSW-REST-TA00"


# ------------------------------------------------------------------------------------------ broken peer


async def test_broken_peer_without_defects_passes_everything(kit_pki: KitPki, tmp_path: Path) -> None:
    async with broken_peer(kit_pki) as peer:
        report = await run_profile(REST, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    assert report.passed, [(r.case.id, r.reason) for r in report.results if not r.passed]
    check_reports(report, tmp_path / "report")


@pytest.mark.parametrize("defect", sorted(DEFECTS[REST]))
async def test_each_defect_is_caught_by_its_case(kit_pki: KitPki, tmp_path: Path, defect: str) -> None:
    meant_for = DEFECTS[REST][defect]
    async with broken_peer(kit_pki, defect) as peer:
        report = await run_profile(REST, RunOptions(target=peer.url, settings=kit_settings(kit_pki)))
    outcomes = {r.case.id: r for r in report.results}
    assert outcomes[meant_for].outcome is Outcome.FAIL, outcomes[meant_for]
    assert outcomes[meant_for].exchanges, "the failing case shows the messages exchanged"
    others = {i: f"{r.outcome.value}: {r.reason}" for i, r in outcomes.items() if i != meant_for and not r.passed}
    assert not others, others
    check_reports(report, tmp_path / "report")


# ------------------------------------------------------------------------------------------ CLI


def _peer_in_thread(pki: KitPki, *defects: str):  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        async with broken_peer(pki, *defects) as peer:
            state["url"] = peer.url
            state["stop"] = stop = asyncio.Event()
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    assert started.wait(30)

    def close() -> None:
        loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[union-attr]
        thread.join(30)
        loop.close()

    return str(state["url"]), close


@pytest.mark.parametrize(("defects", "code"), [((), 0), (("accept-tampered",), 1)])
def test_cli_run_exit_code_and_reports(
    kit_pki: KitPki, tmp_path: Path, capsys: pytest.CaptureFixture[str], defects: tuple[str, ...], code: int
) -> None:
    settings = tmp_path / "kit.toml"
    settings.write_text(
        f'party = "CONFORMANCE"\ntoken = "kit-token"\nother_party = "OTHER"\nother_token = "other-token"\n'
        f'pki = "{kit_pki.directory}"\nmax_message_bytes = 65536\n'
        '[rest]\nenterprise = "ENT-0300000001"\nundelegated_enterprise = "ENT-X"\n',
        encoding="utf-8",
    )
    url, close = _peer_in_thread(kit_pki, *defects)
    try:
        rc = nswgw(
            [
                "conformance",
                "run",
                "--profile",
                REST,
                "--target",
                url,
                "--settings",
                str(settings),
                "--report",
                str(tmp_path / "out"),
            ]
        )
    finally:
        close()
    out = capsys.readouterr().out
    assert rc == code, out
    assert ("FAIL    NSW-REST-TA03" in out) == bool(defects)
    assert "PASS    NSW-REST-TA00" in out
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "junit.xml").exists()


def test_cli_list_and_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nswgw(["conformance", "list", "--profile", REST, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    ids = [c["id"] for c in listed]
    assert {"NSW-REST-TA01", "NSW-REST-TA16", "NSW-REST-RX01"} <= set(ids) and len(ids) == len(set(ids))
    assert all(c["prerequisite"] and c["predicate"] for c in listed)
    bad = tmp_path / "kit.toml"
    bad.write_text('tokn = "x"\n', encoding="utf-8")
    assert (
        nswgw(
            [
                "conformance",
                "run",
                "--profile",
                REST,
                "--target",
                "http://127.0.0.1:9",
                "--settings",
                str(bad),
                "--report",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "CONFIG_INVALID (tokn)" in capsys.readouterr().err


async def test_schema_violation_is_refused_for_a_same_format_destination(kit_pki: KitPki, tmp_path: Path) -> None:
    async with Sink() as sink, Gateway(gateway_config(tmp_path, kit_pki, sink.url, sink_format="same")) as gw:
        report = await run_profile(
            REST, RunOptions(target=gw.url, settings=kit_settings(kit_pki)), only=("NSW-REST-TA02",)
        )
    assert report.passed, report.results[0].reason


# ------------------------------------------------------------------------------------------ the kit as receiver


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_rest_receiver_profile_passes_against_our_gateway_delivering(kit_pki: KitPki, tmp_path: Path) -> None:
    """Our gateway delivers (adapters/http.py) to the kit listening as the receiving intermediary."""
    import aiohttp

    port = free_port()
    config = gateway_config(tmp_path, kit_pki, f"http://127.0.0.1:{port}/inbox")
    options = RunOptions(role="receiver", listen_port=port, wait=30, settings=kit_settings(kit_pki))
    async with Gateway(config) as gw:
        kit = asyncio.create_task(run_profile(REST, options))
        s = kit_settings(kit_pki)
        from conformance.profiles.rest import RestSession

        session = RestSession(RunOptions(target=gw.url, settings=s), kit_pki)
        async with aiohttp.ClientSession() as client:
            for n in range(3):
                h = session.headers(f"rx-{n}")
                async with client.post(f"{gw.url}/v1/messages", data=session.signed(), headers=h) as r:
                    assert r.status == 202, await r.text()
        report = await kit
    assert report.passed, {r.case.id: f"{r.outcome.value}: {r.reason}" for r in report.results}
    assert [r.case.id for r in report.results] == ["NSW-REST-RX01", "NSW-REST-RX02", "NSW-REST-RX03"]
    check_reports(report, tmp_path / "report", raw="<script", escaped="")


async def test_receiver_without_a_sending_party_fails_with_reason(kit_pki: KitPki) -> None:
    options = RunOptions(role="receiver", listen_port=0, wait=0.2, settings=kit_settings(kit_pki))
    report = await run_profile(REST, options, only=("NSW-REST-RX01",))
    assert report.results[0].outcome is Outcome.FAIL
    assert report.results[0].reason == "prerequisite unmet: a delivery did not arrive within 0.2 s"


@pytest.mark.parametrize("defect", [None, *sorted(SENDER_DEFECTS)])
async def test_each_sender_defect_is_caught_by_its_receiver_case(kit_pki: KitPki, defect: str | None) -> None:
    port = free_port()
    options = RunOptions(role="receiver", listen_port=port, wait=3, settings=kit_settings(kit_pki))
    kit = asyncio.create_task(run_profile(REST, options))
    await asyncio.sleep(0)  # the kit opens its listener before the party starts sending
    from conformance.profiles.rest import sample_document

    sender = BrokenSender(f"http://127.0.0.1:{port}/inbox", [defect] if defect else [], body=sample_document())
    sending = asyncio.create_task(sender.run())
    report = await kit
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    failed = {r.case.id for r in report.results if not r.passed}
    assert failed == ({SENDER_DEFECTS[defect]} if defect else set()), {
        r.case.id: r.reason for r in report.results if not r.passed
    }


def test_cli_pki_prepares_every_kind_of_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.pki import EXPIRED, REVOKED, WRONG_USAGE, open_pki

    assert nswgw(["conformance", "pki", str(tmp_path / "pki"), "--key-type", "p256"]) == 0
    kit = open_pki(tmp_path / "pki")
    assert {EXPIRED, REVOKED, WRONG_USAGE, "conformance", "nsw-gateway"} <= set(kit.pki.names)
    assert kit.pki.manifest["certificates"][REVOKED]["status"] == "revoked"
    assert kit.intruder_signer().certificate.subject == kit.signer().certificate.subject
    assert nswgw(["conformance", "pki", str(tmp_path / "pki")]) == 2  # never overwritten without --force
    assert "CONFIG_INVALID" in capsys.readouterr().err


def test_reports_escape_hostile_content(tmp_path: Path) -> None:
    from conformance.model import Case, CaseResult, Exchange

    case = Case("NSW-REST-TA99", REST, "Title <b>", "pre & co", "pred")
    hostile = Exchange.of(
        "received",
        "HTTP 200 <script>alert(1)</script>",
        {"X-Evil": '"><img src=x>'},
        b"\x00\x01<script>alert(2)</script>\xff]]>",
    )
    report = RunReport(
        REST,
        "http://127.0.0.1:1/<x>",
        "sender",
        "t0",
        "t1",
        (CaseResult(case, Outcome.FAIL, "reason <script>", "CODE<", (hostile,)),),
    )
    paths = write_reports(report, tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;alert(2)" in page
    junit = parse_xml(paths["junit"].read_bytes())
    text = junit.find("testsuite/testcase/system-out").text
    assert "\\x00\\x01<script>alert(2)</script>" in text and "]]>" in text
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["cases"][0]["reason"] == "reason <script>"


# ------------------------------------------------------------------------------ the README's gateway recipe


def readme_gateway_config(profile: str, tmp_path: Path, kit_pki: KitPki, sink_url: str) -> Config:
    """The TOML of conformance/README.md "Preparing a gateway" for ``profile``, with this run's paths."""
    import re
    import tomllib

    readme = (Path(__file__).parents[2] / "conformance" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Preparing a gateway", 1)[1].split("\n## ", 1)[0]
    block = re.search(rf"### `{re.escape(profile)}`\n\n```toml\n(.*?)```", section, re.S)
    assert block is not None, f"no TOML for {profile} in the README"
    text = (
        block.group(1)
        .replace("/abs/kit-pki", str(kit_pki.directory).replace("\\", "/"))
        .replace("http://127.0.0.1:9000/inbox", sink_url)
    )
    data = tomllib.loads(text)
    # the operator's own [gateway] settings: this rig's sink takes unsigned deliveries
    data["gateway"] |= {"port": 0, "poll_interval": 0.05, "signing": "off"}
    data["store"] = {"url": f"sqlite:///{tmp_path / 'gw.db'}", "synchronous": "NORMAL"}
    return parse_config(data)


@pytest.mark.parametrize("profile", ["rest-intermediary", "vnsw-ministry", "asw-formd", "asw-acdd"])
async def test_the_readme_recipe_prepares_a_gateway_that_passes_the_profile(
    kit_pki: KitPki, tmp_path: Path, profile: str
) -> None:
    async with Sink() as sink, Gateway(readme_gateway_config(profile, tmp_path, kit_pki, sink.url)) as gw:
        report = await run_profile(profile, RunOptions(target=gw.url, settings=kit_settings(kit_pki)))
    failed = {r.case.id: f"{r.outcome.value} {r.error_code}: {r.reason}" for r in report.results if not r.passed}
    assert not failed, failed


def test_cli_target_down_prints_one_preflight_failure(
    kit_pki: KitPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = nswgw(
        ["conformance", "run", "--profile", REST, "--target", f"http://127.0.0.1:{port}", "--token", KIT_TOKEN,
         "--pki", str(kit_pki.directory), "--report", str(tmp_path / "out")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1
    assert out.count("ClientConnectorError") == 1 and "FAIL    NSW-REST-TA00" in out
    assert f"NOT_RUN {len(REST_SENDER_IDS)} case(s), the preflight did not pass: NSW-REST-TA01, " in out
    assert f"rest-intermediary: 0 passed, 1 failed, 0 errors, {len(REST_SENDER_IDS)} not run" in out
