"""Configuration validation (errors name the bad key), routing, and the dlq / log commands."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from gateway.commands import main
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.model import PartyId, SubmissionEnvelope
from gateway.routing import Router

EXAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "examples" / "gateway.toml"


def test_example_configuration_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.party_for_token("dev-mard-token") == "MARD"
    assert config.party_for_token("dev-moit-token") == "MOIT"
    assert config.party_for_token("nope") is None
    assert config.destinations["TH"].retry.max_attempts == 12


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"destinations": {"TH": {"url": "u", "retry": {"max_attempts": 0}}}}, "destinations.TH.retry.max_attempts"),
        ({"destinations": {"TH": {"url": "u"}}, "routes": [{"to": ["TX"]}]}, "routes[0].to[0]"),
        ({"destinations": {"TH": {"url": "u", "adapter": "htp"}}}, "destinations.TH.adapter"),
        ({"gateway": {"prot": 1}}, "gateway.prot"),
        ({"parties": {"A": {"token_sha256": ["zz"]}}}, "parties.A.token_sha256"),
        ({"destinations": {"TH": {}}}, "destinations.TH.url"),
        (
            {
                "destinations": {"TH": {"url": "u"}},
                "routes": [{"to": ["TH"], "sender": "MOTI"}],
                "parties": {"MOIT": {}},
            },
            "routes[0].sender",
        ),
    ],
    ids=[
        "attempts-zero",
        "unknown-destination",
        "unknown-adapter",
        "typo-key",
        "bad-digest",
        "missing-url",
        "unknown-sender",
    ],
)
def test_invalid_configuration_names_the_bad_key(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field


def test_suggestions_for_misspelt_references() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"destinations": {"CUSTOMS": {"url": "u"}}, "routes": [{"to": ["CUSTOM"]}]})
    assert "did you mean 'CUSTOMS'" in err.value.message


def test_unreadable_or_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert err.value.field == str(bad)


def test_first_matching_route_wins_and_fans_out() -> None:
    config = load_config(EXAMPLE)
    router = Router(config.routes, tuple(config.destinations))
    eco = SubmissionEnvelope(sender=PartyId("MOIT"), message_id="1", document_type="eco.form_d")
    assert router.route(eco) == ("TH", "CUSTOMS")
    reg = SubmissionEnvelope(sender=PartyId("TRADER"), message_id="1", document_type="sps.registration")
    assert router.route(reg) == ("MARD",)


def _write_config(tmp_path: Path, url: str = "http://127.0.0.1:9/inbox") -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f"""
[gateway]
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
url = "sqlite:///gw.db"
synchronous = "NORMAL"
[parties.MOIT]
tokens = ["t"]
document_types = ["*"]
[destinations.TH]
url = "{url}"
[destinations.TH.retry]
ttl = 0.2
initial = 0.01
max_wait = 0.02
jitter = 0.0
[[routes]]
to = ["TH"]
[document_types."eco.form_d"]
unchecked = true               # opaque test documents
""")
    return path


async def _fill_dlq(path: Path) -> list[str]:
    from gateway.api import Gateway
    from gateway.model import State
    from helpers.gateway import eventually

    config = load_config(path)
    async with Gateway(config, serve_http=False) as gw:
        ids = []
        for n in range(2):
            env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id=f"M-{n}", document_type="eco.form_d")
            ids.append((await gw.broker.submit("MOIT", env, b"<a/>")).ack.id)

        async def dead() -> bool:
            return len(await gw.store.dead_letters()) == 2

        await eventually(dead)
        for i in ids:
            rec = await gw.store.get(i)
            assert rec is not None and rec.state is State.DEAD
    return ids


def test_dlq_list_and_replay_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path)
    ids = asyncio.run(_fill_dlq(path))
    assert main(["dlq", "list", "--config", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ids and {r["error"] for r in rows} == {"PARTNER_UNAVAILABLE"}
    assert main(["dlq", "replay", "--config", str(path), "--message", ids[0]]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    assert main(["dlq", "list", "--config", str(path), "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ids[1:]


def test_log_verify_detects_an_edited_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path)
    asyncio.run(_fill_dlq(path))
    assert main(["log", "verify", "--config", str(path)]) == 0
    assert "message log OK: 2 entries" in capsys.readouterr().out
    conn = sqlite3.connect(tmp_path / "gw.db")
    with conn:
        conn.execute("UPDATE journal SET message = 'forged' WHERE seq = 1")
    conn.close()
    assert main(["log", "verify", "--config", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["problems"] == [
        "entry 1: edited (content does not match its hash)",
        "entry 1: evidence-missing (accepted payload of forged is gone)",
    ]


def test_command_with_a_bad_config_reports_the_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "verify", "--config", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.startswith("CONFIG_INVALID")


def test_example_configuration_loads_its_trust_stores_and_key_from_a_dev_pki(tmp_path: Path) -> None:
    """Prerequisite: the example file next to a dev PKI made as its header says. Predicate: the gateway
    builds every trust store, the key ring and the receipt verifiers from it (files read at start)."""
    import shutil

    from gateway.api import Gateway
    from gateway.ports import DocumentSigner, DocumentVerifier, SignedReceiptVerifier
    from signing.dev.pki import init_dev_pki

    shutil.copy(EXAMPLE, tmp_path / "gateway.toml")
    init_dev_pki(tmp_path / "pki", ["nsw-gateway", "moit", "mard", "broker", "customs", "th-asw"], key_kind="p256")
    config = load_config(tmp_path / "gateway.toml")
    assert config.parties["BROKER"].delegated("0300000001")
    gw = Gateway(config)
    assert isinstance(gw.broker.verifier, DocumentVerifier) and isinstance(gw.broker.signer, DocumentSigner)
    assert isinstance(gw.engine.workers["TH"].receipts, SignedReceiptVerifier)
    assert gw.broker.signer.profile_for("CUSTOMS-REST") is None


THREE_MISTAKES = """
[store]
synchronous = "SOMETIMES"
[parties.MOIT]
tokens = ["t"]
document_types = ["*"]
[destinations.TH]
url = "http://127.0.0.1:9/inbox"
[destinations.TH.retry]
max_attemps = 12
[[routes]]
document_type = "eco.form_d"
"""


def test_every_validation_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    fields = [e["field"] for e in err.value.details["errors"]]
    assert err.value.code == "CONFIG_INVALID"
    assert sorted(fields) == ["destinations.TH.retry.max_attemps", "routes[0].to", "store.synchronous"]
    assert err.value.field == fields[0]
    for field in fields:
        assert f"  {field}: " in err.value.message


def test_command_prints_every_validation_error_of_its_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(THREE_MISTAKES)
    assert main(["log", "verify", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("CONFIG_INVALID")
    for field in ("destinations.TH.retry.max_attemps", "routes[0].to", "store.synchronous"):
        assert field in err
