"""The intake cost of agency subscriptions: CPU µs per submission of :meth:`Broker._process` (verify, map, route,
sign: what runs in an intake thread or process) for an import permit in the harmonized JSON format routed to one
destination, with

* ``none``: no subscription;
* ``miss-type``: 20 subscriptions, none for this document type (ruled out from the envelope, the message is not
  read again);
* ``miss-chapter``: one subscription for the type, not for the permit's HS chapter (the message is read once more);
* ``match``: one matching subscription (read, projected, written and its disclosure digested).

    .venv/bin/python benchmarks/subscriptions.py [--rounds 2000] [--json out]

Printed: one JSON object per case with ``us_per_submission`` (median of 5 batches) and ``ratio`` to ``none``,
and ``load_average`` (``os.getloadavg()``) before and after. Nothing is stored: the store is never opened.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.api import Gateway  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.model import Message, PartyId, SubmissionEnvelope  # noqa: E402

PERMIT = json.dumps(
    {
        "document": {"number": "GP-2026-0001", "type_code": "911"},
        "parties": {"consignee": {"name": "Cong ty TNHH Nhap Khau Sao Mai", "identifier": "0312345678"}},
        "transport": {"port_of_discharge": {"code": "VNHPH", "name": "Hai Phong"}},
        "goods": [
            {
                "sequence": n,
                "hs_code": "84713020",
                "description": "Laptop computers",
                "quantities": [{"value": "1200", "unit": "H87"}],
                "fob_value": {"value": "98765.40", "currency": "USD"},
            }
            for n in range(1, 21)
        ],
        "permit": {"number": "GP-2026-0001", "officer": "Nguyen Thi Thu"},
    }
).encode()


def _subscription(**extra: Any) -> dict[str, Any]:
    return {
        "destination": "MS",
        "legal_basis": "Decree 98/2020/ND-CP, Art. 5",
        "document_types": ["import.permit"],
        "fields": ["permit.number", "goods.hs_code", "transport.port_of_discharge"],
        **extra,
    }


CASES: dict[str, dict[str, Any]] = {
    "none": {},
    "miss-type": {f"S{n}": _subscription(document_types=["sps.permit"]) for n in range(20)},
    "miss-chapter": {"MS": _subscription(hs_chapters=["01"])},
    "match": {"MS": _subscription(hs_chapters=["84"])},
}


def _gateway(directory: Path, subscriptions: dict[str, Any]) -> Gateway:
    config = parse_config(
        {
            "gateway": {"verification": "well-formed", "signing": "off"},
            "store": {"url": f"sqlite:///{directory / 'unused.db'}"},
            "parties": {"MOIT": {"tokens": ["t"], "document_types": ["import.permit", "sps.permit"], "format": "json"}},
            "destinations": {
                "CUSTOMS": {"url": "http://127.0.0.1:9/inbox", "format": "json"},
                "MS": {"url": "http://127.0.0.1:9/ms", "format": "json"},
            },
            "routes": [{"to": ["CUSTOMS"]}],
            "document_types": {"import.permit": {"unchecked": True}, "sps.permit": {"unchecked": True}},
            "subscriptions": subscriptions,
        }
    )
    return Gateway(config, serve_http=False)


def _batch(gw: Gateway, rounds: int) -> float:
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id="P-1", document_type="import.permit", format="json")
    started = time.process_time()
    for _ in range(rounds):
        message = Message.receive(env, at=time.time())
        gw.broker._process(message, [PERMIT])
    return (time.process_time() - started) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        gateways = {name: _gateway(Path(tmp), subs) for name, subs in CASES.items()}
        for gw in gateways.values():
            _batch(gw, 50)  # warm up
        timings: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(5):  # interleaved, so that a busy moment costs every case alike
            for name, gw in gateways.items():
                timings[name].append(_batch(gw, args.rounds // 5))
    base = statistics.median(timings["none"])
    for name, values in timings.items():
        us = statistics.median(values)
        results.append({"case": name, "us_per_submission": round(us, 1), "ratio": round(us / base, 3)})
    after = os.getloadavg()
    for r in results:
        print(json.dumps({**r, "load_average": {"before": before, "after": after}}))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
