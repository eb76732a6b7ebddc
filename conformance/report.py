"""Reports of a run: JUnit XML (for CI), JSON (for tools) and one self-contained HTML file (for auditors).

Every piece of text that came from the party (bodies, headers, reasons) is
escaped: the messages exchanged include attack payloads (XXE, billion laughs,
script tags in a field). The HTML has inline CSS only, no script and no
external resource, and a Content-Security-Policy that forbids both. Characters
that XML 1.0 cannot carry (NUL, other C0 controls, lone surrogates) are shown
as ``\\xNN`` in the JUnit file.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from lxml import etree

from conformance.model import CaseResult, Exchange, Outcome, RunReport

__all__ = ["junit_xml", "json_report", "html_report", "write_reports", "REPORT_FILES"]

REPORT_FILES = {"junit": "junit.xml", "json": "report.json", "html": "report.html"}
"""File names written into the report directory."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _exchange_text(exchanges: tuple[Exchange, ...]) -> str:
    parts = []
    for e in exchanges:
        head = "\n".join(f"{k}: {v}" for k, v in e.headers)
        note = f" ({e.note})" if e.note else ""
        parts.append(f">>> {e.direction.upper()} {e.summary}{note}\n{head}\n\n{e.body}\n")
    return "\n".join(parts)


def junit_xml(report: RunReport) -> bytes:
    """The run as a JUnit XML ``testsuites`` document."""
    counts = report.counts()
    suites = etree.Element("testsuites", name="nswgw-conformance")
    suite = etree.SubElement(
        suites,
        "testsuite",
        name=report.profile,
        tests=str(len(report.results)),
        failures=str(counts["FAIL"]),
        errors=str(counts["ERROR"]),
        skipped=str(counts["NOT_RUN"]),
        time=f"{sum(r.duration for r in report.results):.3f}",
        timestamp=report.started_at,
    )
    props = etree.SubElement(suite, "properties")
    for name, value in (("target", report.target), ("role", report.role), ("profile", report.profile)):
        etree.SubElement(props, "property", name=name, value=_xml_text(value))
    for r in report.results:
        tc = etree.SubElement(
            suite,
            "testcase",
            classname=f"conformance.{report.profile}",
            name=_xml_text(f"{r.case.id} {r.case.title}"),
            time=f"{r.duration:.3f}",
        )
        if r.outcome is Outcome.NOT_RUN:
            etree.SubElement(tc, "skipped", message=_xml_text(r.reason))
        elif r.outcome is not Outcome.PASS:
            tag = "failure" if r.outcome is Outcome.FAIL else "error"
            el = etree.SubElement(tc, tag, message=_xml_text(r.reason), type=_xml_text(r.error_code or r.outcome.value))
            el.text = _xml_text(f"Prerequisite: {r.case.prerequisite}\nPredicate: {r.case.predicate}\n{r.reason}")
        out = etree.SubElement(tc, "system-out")
        out.text = _xml_text(_exchange_text(r.exchanges))
    return etree.tostring(suites, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def json_report(report: RunReport) -> bytes:
    """The run as JSON (``RunReport.to_dict``)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
.PASS{color:#116329;font-weight:600}.FAIL{color:#a40e26;font-weight:600}.ERROR{color:#9a6700;font-weight:600}
.NOT_RUN{color:#57606a;font-weight:600}
section.case{border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em;margin:1em 0}
section.case h2{font-size:1.1em;margin:.2em 0}dl{display:grid;grid-template-columns:9em 1fr;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}pre{background:#f6f8fa;padding:.6em;overflow:auto;white-space:pre-wrap;
word-break:break-all;max-height:30em}code{font-family:ui-monospace,monospace}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _case_html(r: CaseResult) -> str:
    exchanges = (
        "".join(
            f"<details><summary>{_e(x.direction)}: <code>{_e(x.summary)}</code>"
            f"{' (' + _e(x.note) + ')' if x.note else ''} ({x.size} bytes)</summary>"
            f"<pre>{_e(chr(10).join(f'{k}: {v}' for k, v in x.headers))}</pre><pre>{_e(x.body)}</pre></details>"
            for x in r.exchanges
        )
        or "<p>(no message exchanged)</p>"
    )
    return (
        f'<section class="case" id="{_e(r.case.id)}"><h2><span class="{r.outcome.value}">{r.outcome.value}</span> '
        f"<code>{_e(r.case.id)}</code> {_e(r.case.title)}</h2><dl>"
        f"<dt>Severity</dt><dd>{_e(r.case.severity.value)}</dd>"
        f"<dt>Prerequisite</dt><dd>{_e(r.case.prerequisite)}</dd>"
        f"<dt>Predicate</dt><dd>{_e(r.case.predicate)}</dd>"
        f'<dt>Result</dt><dd class="{r.outcome.value}">{r.outcome.value}</dd>'
        f"<dt>Reason</dt><dd>{_e(r.reason) or '&#8212;'}</dd>"
        f"<dt>Error code</dt><dd><code>{_e(r.error_code or '—')}</code></dd>"
        f"<dt>Duration</dt><dd>{r.duration:.3f} s</dd></dl>"
        f"<h3>Messages exchanged</h3>{exchanges}</section>"
    )


def html_report(report: RunReport) -> bytes:
    """The run as one self-contained HTML page (inline CSS, no script, everything escaped)."""
    counts = report.counts()
    verdict = "PASS" if report.passed else "FAIL"
    rows = "".join(
        f'<tr><td><a href="#{_e(r.case.id)}"><code>{_e(r.case.id)}</code></a></td><td>{_e(r.case.title)}</td>'
        f'<td class="{r.outcome.value}">{r.outcome.value}</td><td><code>{_e(r.error_code or "")}</code></td></tr>'
        for r in report.results
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Conformance {_e(report.profile)}: {verdict}</title><style>{_CSS}</style></head><body>"
        f'<h1>NSW gateway conformance: <code>{_e(report.profile)}</code> <span class="{verdict}">{verdict}</span></h1>'
        f"<table><tr><th>Target</th><td><code>{_e(report.target)}</code></td></tr>"
        f"<tr><th>Kit role</th><td>{_e(report.role)}</td></tr>"
        f"<tr><th>Started</th><td>{_e(report.started_at)}</td></tr><tr><th>Finished</th><td>{_e(report.finished_at)}</td></tr>"
        f"<tr><th>Results</th><td>{counts['PASS']} passed, {counts['FAIL']} failed, {counts['ERROR']} errors, "
        f"{counts['NOT_RUN']} not run of {len(report.results)}</td></tr></table>"
        f"<table><tr><th>Case</th><th>Title</th><th>Result</th><th>Error code</th></tr>{rows}</table>"
        + "".join(_case_html(r) for r in report.results)
        + "</body></html>\n"
    )
    return page.encode("utf-8")


def write_reports(report: RunReport, directory: str | Path) -> dict[str, Path]:
    """Write the three reports into ``directory`` (created if needed); returns their paths by kind."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in REPORT_FILES.items()}
    paths["junit"].write_bytes(junit_xml(report))
    paths["json"].write_bytes(json_report(report))
    paths["html"].write_bytes(html_report(report))
    return paths
