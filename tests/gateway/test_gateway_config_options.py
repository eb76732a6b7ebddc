"""``[destinations.X.options]`` / ``[inbound.X.options]``: typed per adapter, validated at config load.

Each adapter and inbound endpoint class declares its ``Options`` model; the configuration is validated against
it when it is loaded (every mistake at once, with its dotted path), relative paths are relative to the
configuration file, and the adapter receives the validated model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapters.as4.adapter import As4Adapter, As4Options
from adapters.filedrop import FileDropInbox, FileDropInboxOptions
from adapters.http import HttpAdapter, HttpOptions
from adapters.options import SignerOptions
from adapters.rest import WebhookAdapter, WebhookOptions
from gateway.commands import main
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.ports import BUILTIN_ADAPTERS, BUILTIN_INBOUND, resolve_adapter, resolve_inbound
from gateway.security import build_adapter
from helpers.as4 import ACTION, GATEWAY, PARTNER, SERVICE
from signing.dev.pki import DevPki
from signing.keys import Signer

EXAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "examples" / "gateway.toml"


def _copy_pki(dev_pki: DevPki, into: Path) -> None:
    """The key, certificates and CA of the development PKI under ``into/pki`` (referred to relatively)."""
    pki = into / "pki"
    pki.mkdir()
    us, them = dev_pki.party("nsw-gateway"), dev_pki.party("th-asw")
    shutil.copy(us.key_path, pki / "gateway.key")
    shutil.copy(us.cert_path, pki / "gateway.pem")
    shutil.copy(them.cert_path, pki / "th-asw.pem")
    shutil.copy(dev_pki.root_cert_path, pki / "root-ca.pem")
    shutil.copy(dev_pki.issuing_cert_path, pki / "issuing-ca.pem")


RELATIVE_CONFIG = f"""
[gateway]
verification = "well-formed"   # unsigned test documents
signing = "off"
[store]
url = "sqlite:///data/gw.db"

[parties.MARD]
tokens = ["mard-token"]
document_types = ["*"]

[destinations.HOOK]
adapter = "webhook"
url = "http://127.0.0.1:9/hook"
[destinations.HOOK.options]
signer = {{ key = "pki/gateway.key", cert = "pki/gateway.pem" }}

[destinations.TH]
adapter = "as4"
url = "http://127.0.0.1:9/as4"
[destinations.TH.options]
encryption_certificate = "pki/th-asw.pem"
signer = {{ key = "pki/gateway.key", cert = "pki/gateway.pem" }}
trust = {{ anchors = ["pki/root-ca.pem"], intermediates = ["pki/issuing-ca.pem"], signers = [{{ subject = {{ CN = "th-asw" }} }}] }}
[destinations.TH.options.pmode]
id = "VN-NSW-TH-ASW-eco"
service = "{SERVICE}"
action = "{ACTION}"
initiator = {{ party_id = "{GATEWAY}" }}
responder = {{ party_id = "{PARTNER}" }}

[inbound.legacy]
endpoint = "filedrop"
[inbound.legacy.options]
path = "drop/mard"
party = "MARD"
document_type = "sps.permit"
"""


async def test_relative_key_trust_and_directory_paths_are_relative_to_the_config_file_not_the_cwd(
    dev_pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "etc-nsw"
    home.mkdir()
    _copy_pki(dev_pki, home)
    (home / "data").mkdir()
    (home / "gateway.toml").write_text(RELATIVE_CONFIG, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(home / "gateway.toml")

    hook = config.destinations["HOOK"].options
    assert isinstance(hook, WebhookOptions) and isinstance(hook.signer, SignerOptions)
    assert hook.signer.key == str((home / "pki" / "gateway.key").resolve())
    th = config.destinations["TH"].options
    assert isinstance(th, As4Options)
    inbox = config.inbound["legacy"].options
    assert isinstance(inbox, FileDropInboxOptions) and inbox.path == str((home / "drop" / "mard").resolve())

    webhook = build_adapter("HOOK", config.destinations["HOOK"])
    assert isinstance(webhook, WebhookAdapter)
    assert webhook.options is hook and webhook.signer.certificate == dev_pki.party("nsw-gateway").cert
    as4 = build_adapter("TH", config.destinations["TH"])
    assert isinstance(as4, As4Adapter)
    try:
        assert as4.trust.anchors == (dev_pki.root_cert,)
        assert as4.encryption_certificate == dev_pki.party("th-asw").cert
    finally:
        await as4.close()
    endpoint = resolve_inbound("filedrop")("legacy", options=inbox)
    assert isinstance(endpoint, FileDropInbox) and endpoint.root == (home / "drop" / "mard").resolve()


def test_misspelt_option_names_its_dotted_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"inbound": {"soap": {"endpoint": "vnsw-soap", "options": {"pathh": "/soap"}}}})
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "inbound.soap.options.pathh"
    assert "Extra inputs are not permitted" in caught.value.message


def test_misspelt_nested_signer_key_names_its_dotted_field() -> None:
    signer = {"p12": "gateway.p12", "password_envv": "NSW_P12_PASSWORD"}
    with pytest.raises(ConfigError) as caught:
        parse_config({"destinations": {"HOOK": {"adapter": "webhook", "url": "u", "options": {"signer": signer}}}})
    assert caught.value.code == "CONFIG_INVALID"
    assert caught.value.field == "destinations.HOOK.options.signer.password_envv"


def test_wrong_option_type_names_the_field() -> None:
    signer = {"p12": "gateway.p12", "password_env": 42}
    with pytest.raises(ConfigError) as caught:
        parse_config({"destinations": {"TH": {"adapter": "webhook", "url": "u", "options": {"signer": signer}}}})
    assert caught.value.code == "CONFIG_INVALID"
    assert caught.value.field == "destinations.TH.options.signer.password_env"
    assert "valid string" in caught.value.message


def test_three_mistakes_in_options_are_reported_at_once() -> None:
    data = {
        "destinations": {
            "TH": {"url": "u", "options": {"max_conections": 4}},
            "MARD": {"adapter": "vnsw-soap", "url": "u", "options": {"strict": "maybe"}},
        },
        "inbound": {"legacy": {"endpoint": "filedrop", "options": {"path": "drop", "interval": 0}}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.code == "CONFIG_INVALID"
    fields = [e["field"] for e in caught.value.details["errors"]]
    assert fields == [
        "destinations.TH.options.max_conections",
        "destinations.MARD.options.office_code",
        "destinations.MARD.options.strict",
        "inbound.legacy.options.party",
        "inbound.legacy.options.interval",
    ]
    assert caught.value.field == fields[0] and "(and 4 more)" in caught.value.message


def test_option_mistakes_and_other_mistakes_are_reported_together() -> None:
    data = {
        "gateway": {"prot": 1},
        "destinations": {"TH": {"url": "u", "adapter": "htp"}, "MARD": {"url": "u", "options": {"pool": 2}}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    fields = [e["field"] for e in caught.value.details["errors"]]
    assert fields == ["gateway.prot", "destinations.TH.adapter", "destinations.MARD.options.pool"]
    assert "did you mean 'http'" in caught.value.message


def test_check_config_lists_every_option_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "gw.toml"
    bad.write_text(
        """
[destinations.TH]
url = "http://127.0.0.1:9/inbox"
[destinations.TH.options]
max_conections = 4
[inbound.soap]
endpoint = "vnsw-soap"
[inbound.soap.options]
pathh = "/soap"
identity = { nmae = "NSW" }
""",
        encoding="utf-8",
    )
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("CONFIG_INVALID (destinations.TH.options.max_conections)")
    for field in ("inbound.soap.options.pathh", "inbound.soap.options.identity"):
        assert f"  {field}: " in err
    assert main(["check-config", "--config", str(bad), "--json"]) == 2
    reported = json.loads(capsys.readouterr().err)
    assert reported["code"] == "CONFIG_INVALID"
    assert [e["field"] for e in reported["details"]["errors"]] == [
        "destinations.TH.options.max_conections",
        "inbound.soap.options.identity",
        "inbound.soap.options.pathh",
    ]
    monkeypatch.chdir(tmp_path)
    assert main(["check-config", "--config", str(EXAMPLE), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True and summary["destinations"]["TH"] == "http"


def test_example_configuration_options_are_typed() -> None:
    config = load_config(EXAMPLE)
    options = config.destinations["TH"].options
    assert isinstance(options, HttpOptions) and options.max_connections == 8
    assert isinstance(config.destinations["MARD"].options, HttpOptions)


def test_adapter_built_in_code_still_validates_its_options() -> None:
    with pytest.raises(ConfigError) as caught:
        HttpAdapter("http://127.0.0.1:9/inbox", options={"max_conections": 4})
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "options.max_conections"
    with pytest.raises(ConfigError) as caught:
        HttpAdapter("http://127.0.0.1:9/inbox", options={"max_connections": 0})
    assert caught.value.field == "options.max_connections"
    with pytest.raises(ConfigError) as caught:
        WebhookAdapter("http://127.0.0.1:9/hook", options=HttpOptions())
    assert caught.value.field == "options" and "WebhookOptions" in caught.value.message
    assert HttpAdapter("http://127.0.0.1:9/inbox", options={"max_connections": 2}).options.max_connections == 2


def test_signer_object_passed_in_code_is_kept_in_the_config_and_the_adapter(dev_pki: DevPki) -> None:
    us = dev_pki.party("nsw-gateway")
    adapter = WebhookAdapter(
        "http://127.0.0.1:9/hook", options={"signer": {"key": str(us.key_path), "cert": str(us.cert_path)}}
    )
    signer = adapter.signer
    config = parse_config(
        {
            "gateway": {"signing": "off"},
            "destinations": {"HOOK": {"adapter": "webhook", "url": "u", "options": {"signer": signer}}},
        }
    )
    options = config.destinations["HOOK"].options
    assert isinstance(options, WebhookOptions) and options.signer is signer and isinstance(signer, Signer)
    assert WebhookAdapter("http://127.0.0.1:9/hook", options=options).signer is signer
    same = parse_config(
        {
            "gateway": {"signing": "off"},
            "destinations": {"HOOK": {"adapter": "webhook", "url": "u", "options": options}},
        }
    )
    assert same.destinations["HOOK"].options is options


@pytest.mark.parametrize(
    ("kind", "name"), [("adapter", a) for a in sorted(BUILTIN_ADAPTERS)] + [("inbound", e) for e in BUILTIN_INBOUND]
)
def test_every_builtin_declares_frozen_documented_options_that_forbid_unknown_keys(kind: str, name: str) -> None:
    cls = resolve_adapter(name) if kind == "adapter" else resolve_inbound(name)
    model = cls.Options
    assert model.model_config.get("frozen") is True and model.model_config.get("extra") == "forbid"
    undocumented = [field for field, info in model.model_fields.items() if not info.description]
    assert model.model_fields and not undocumented


def test_key_that_cannot_be_loaded_at_start_names_the_option_under_its_destination(
    dev_pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NSW_TEST_UNSET_P12_PASSWORD", raising=False)
    signer = {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "NSW_TEST_UNSET_P12_PASSWORD"}
    config = parse_config(
        {
            "gateway": {"signing": "off"},
            "destinations": {"HOOK": {"adapter": "webhook", "url": "u", "options": {"signer": signer}}},
        }
    )
    with pytest.raises(ConfigError) as caught:
        build_adapter("HOOK", config.destinations["HOOK"])
    assert caught.value.code == "CONFIG_INVALID"
    assert caught.value.field == "destinations.HOOK.options.signer.password_env"
