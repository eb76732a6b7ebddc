"""A partner URL's credentials (``user:password@``, a query string holding a key) never reach what a failed
delivery leaves behind: the stored error, the logs, the operator's views."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import requests
import zeep.exceptions

from adapters.http import translate_error as http_error
from adapters.vnsw_soap.outbound import translate_error as soap_error
from gateway.api import Gateway
from gateway.model import State
from gateway.ports import public_endpoint, without_credentials
from helpers.gateway import Receiver, doc, eventually, make_config, submit

SECRET_URL = "https://gw-user:s3cret-pw@th.example:8443/inbox?api_key=hunter2&x=1"


def test_public_endpoint_keeps_scheme_host_port_and_path_only() -> None:
    assert public_endpoint(SECRET_URL) == "https://th.example:8443/inbox"
    assert public_endpoint("http://[::1]:8080/a?b=c") == "http://[::1]:8080/a"
    assert public_endpoint("/srv/drop?x") == "/srv/drop"


def test_a_drivers_description_loses_the_password_and_the_query() -> None:
    text = f"ClientConnectorError: Cannot connect to {SECRET_URL} (url='https://gw-user:s3cret-pw@th.example/')"
    cleaned = without_credentials(text, SECRET_URL)
    assert "s3cret-pw" not in cleaned and "hunter2" not in cleaned and "gw-user" not in cleaned
    assert "https://th.example:8443/inbox" in cleaned


HTTP_FAILURES = [
    aiohttp.ClientResponseError(None, (), status=503),  # type: ignore[arg-type]
    aiohttp.ClientResponseError(None, (), status=400),  # type: ignore[arg-type]
    TimeoutError(),
    aiohttp.InvalidURL(SECRET_URL),
    aiohttp.ClientConnectionError(f"cannot reach {SECRET_URL}"),
]
SOAP_FAILURES = [
    zeep.exceptions.TransportError(status_code=503),
    zeep.exceptions.TransportError(status_code=404),
    zeep.exceptions.Fault(f"no route to {SECRET_URL}"),
    requests.exceptions.InvalidURL(SECRET_URL),
    requests.exceptions.ConnectTimeout(f"{SECRET_URL} timed out"),
    requests.exceptions.ConnectionError(f"Max retries exceeded with url: {SECRET_URL}"),
    OSError(f"cannot reach {SECRET_URL}"),
]


@pytest.mark.parametrize(
    ("translate", "exc"), [(http_error, e) for e in HTTP_FAILURES] + [(soap_error, e) for e in SOAP_FAILURES]
)
def test_every_translated_partner_error_names_the_endpoint_without_its_credentials(translate, exc) -> None:  # type: ignore[no-untyped-def]
    error = translate(exc, SECRET_URL)
    text = f"{error.message} {error.details}"
    assert "s3cret-pw" not in text and "hunter2" not in text and "gw-user" not in text, text
    assert "th.example" in text


async def test_a_failed_delivery_to_a_url_with_credentials_stores_no_credential(tmp_path: Path) -> None:
    async with Receiver(mode="down") as partner:
        port = partner.port
        url = f"http://gw-user:s3cret-pw@127.0.0.1:{port}/inbox?api_key=hunter2"
        config = make_config(tmp_path, {"TH": url}, retry={"max_attempts": 1})
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            status, ack = await submit(session, gw.url, "MOIT", "C-1", "eco.form_d", doc(1))
            assert status == 202, ack

            async def dead() -> bool:
                record = await gw.store.get(ack["id"])
                return record is not None and record.deliveries[0].state is State.DEAD

            await eventually(dead)
            record = await gw.store.get(ack["id"])
    assert record is not None and partner.requests, "the partner was never called"
    stored = f"{record.deliveries[0].last_error} {[t.detail for t in record.deliveries[0].history]}"
    assert "s3cret-pw" not in stored and "hunter2" not in stored and "gw-user" not in stored, stored
    assert f"http://127.0.0.1:{port}/inbox answered 503" in stored
