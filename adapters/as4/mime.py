"""SOAP 1.2 with MIME attachments: multipart/related building and parsing (RFC 2387, SwA).

Building writes the parts byte for byte (``Content-Transfer-Encoding:
binary``), the SOAP part first. Parsing splits on the declared boundary and
reads each part's headers with the stdlib email parser; base64 and
quoted-printable transfer encodings are decoded. The SOAP part is returned as
bytes for :func:`signing.xml.parse_xml` (the only XML parser); attachments are
never parsed here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP

from gateway.errors import ValidationFailed, ValidationIssue

__all__ = ["MimePart", "MimeMessage", "build_multipart", "parse_multipart", "SOAP_CONTENT_TYPE"]

SOAP_CONTENT_TYPE = "application/soap+xml"


@dataclass(frozen=True)
class MimePart:
    """An attachment: its Content-ID (without angle brackets), content type and content."""

    content_id: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class MimeMessage:
    """A parsed multipart/related request: the SOAP part's bytes and the attachments by Content-ID."""

    soap: bytes
    attachments: Mapping[str, MimePart]


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed([ValidationIssue(where, "AS4_MIME", message)], details={"ebms": "EBMS:0007"})


def build_multipart(soap: bytes, attachments: Sequence[MimePart]) -> tuple[bytes, str]:
    """The body and the Content-Type header of a multipart/related AS4 message."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    start = f"soap-{uuid.uuid4().hex}@nsw-gateway"
    delimiter = b"--" + boundary.encode("ascii")
    chunks = [
        delimiter,
        b"\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\n",
        f"Content-ID: <{start}>\r\n\r\n".encode("ascii"),
        soap,
    ]
    for part in attachments:
        if any(c in part.content_id for c in "<>\r\n"):
            raise ValueError(f"invalid Content-ID {part.content_id!r}")
        chunks += [
            b"\r\n",
            delimiter,
            f"\r\nContent-Type: {part.content_type}\r\nContent-Transfer-Encoding: binary\r\n".encode("ascii"),
            f"Content-ID: <{part.content_id}>\r\n\r\n".encode("ascii"),
            part.content,
        ]
    chunks += [b"\r\n", delimiter, b"--\r\n"]
    content_type = f'multipart/related; type="{SOAP_CONTENT_TYPE}"; boundary="{boundary}"; start="<{start}>"'
    return b"".join(chunks), content_type


def _header(content_type: str) -> Message:
    return BytesHeaderParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1"))


def _decode(headers: Message, content: bytes, where: str) -> bytes:
    cte = (headers.get("Content-Transfer-Encoding") or "binary").strip().lower()
    if cte in ("binary", "8bit", "7bit"):
        return content
    if cte == "base64":
        try:
            return base64.b64decode(b"".join(content.split()), validate=True)
        except binascii.Error as exc:
            raise _fail(where, f"the part is not valid base64: {exc}") from exc
    if cte == "quoted-printable":
        return quopri.decodestring(content)
    raise _fail(where, f"unsupported Content-Transfer-Encoding {cte!r}")


def parse_multipart(body: bytes, content_type: str) -> MimeMessage:
    """Split an AS4 request into the SOAP part and its attachments (a plain SOAP body has none)."""
    message = _header(content_type or "")
    ctype = message.get_content_type()
    if ctype == SOAP_CONTENT_TYPE:
        return MimeMessage(body, {})
    if ctype != "multipart/related":
        raise _fail("Content-Type", f"expected multipart/related or {SOAP_CONTENT_TYPE}, got {ctype!r}")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _fail("Content-Type", "multipart/related without a boundary")
    start = message.get_param("start")
    # Every delimiter, the first included, is CRLF "--" boundary (RFC 2046 section 5.1.1).
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    body = b"\r\n" + body
    pieces = body.split(delimiter)
    # pieces[0] is the preamble; the last is "--" plus the epilogue.
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise _fail("multipart", "the multipart body is not closed by its final boundary")
    parts: list[tuple[Message, bytes, str]] = []
    for number, raw in enumerate(pieces[1:-1], start=1):
        where = f"MIME part {number}"
        line_end = raw.find(b"\r\n")
        if line_end < 0 or raw[:line_end].strip(b" \t"):
            raise _fail(where, "malformed boundary line")
        raw = raw[line_end + 2 :]
        split = raw.find(b"\r\n\r\n")
        if raw.startswith(b"\r\n"):
            head, content = b"", raw[2:]
        elif split < 0:
            raise _fail(where, "the part has no header/body separator")
        else:
            head, content = raw[:split], raw[split + 4 :]
        headers: Message = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
        parts.append((headers, _decode(headers, content, where), where))
    if not parts:
        raise _fail("multipart", "no MIME part")
    soap_index = 0
    if isinstance(start, str) and start:
        wanted = start.strip().strip("<>")
        matches = [i for i, (h, _, _) in enumerate(parts) if (h.get("Content-ID") or "").strip().strip("<>") == wanted]
        if len(matches) != 1:
            raise _fail("Content-Type", f"the start part <{wanted}> is not in the message")
        soap_index = matches[0]
    soap_headers, soap, where = parts[soap_index]
    if soap_headers.get_content_type() != SOAP_CONTENT_TYPE:
        raise _fail(where, f"the root part is {soap_headers.get_content_type()!r}, not {SOAP_CONTENT_TYPE}")
    attachments: dict[str, MimePart] = {}
    for i, (headers, content, where) in enumerate(parts):
        if i == soap_index:
            continue
        cid = (headers.get("Content-ID") or "").strip().strip("<>")
        if not cid:
            raise _fail(where, "an attachment has no Content-ID")
        if cid in attachments:
            raise _fail(where, f"two attachments have Content-ID <{cid}>")
        attachments[cid] = MimePart(cid, headers.get_content_type(), content)
    return MimeMessage(soap, attachments)
