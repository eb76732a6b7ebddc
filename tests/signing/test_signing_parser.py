"""The one hardened parser: every classic XML attack is refused with its own code, before any damage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import XmlError
from signing.xml import ParserLimits, ascii_only, parse_xml, serialize

XML_VECTORS = Path(__file__).parents[1] / "vectors" / "xml"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("billion_laughs.xml", "XML_DTD_FORBIDDEN"),
        ("quadratic_blowup.xml", "XML_DTD_FORBIDDEN"),
        ("xxe_file.xml", "XML_DTD_FORBIDDEN"),
        ("xxe_parameter_entity.xml", "XML_DTD_FORBIDDEN"),
        ("external_dtd.xml", "XML_DTD_FORBIDDEN"),
        ("utf16_external_dtd.xml", "XML_DTD_FORBIDDEN"),
        ("undeclared_entity.xml", "XML_ENTITY_FORBIDDEN"),
        ("malformed_unclosed.xml", "XML_MALFORMED"),
    ],
)
def test_attack_vector_is_rejected_with_its_code(name: str, code: str) -> None:
    with pytest.raises(XmlError) as info:
        parse_xml((XML_VECTORS / name).read_bytes())
    assert info.value.code == code
    assert info.value.field  # names where: DOCTYPE, or line/column
    assert isinstance(info.value, ValueError)


def test_every_xml_vector_file_is_covered():
    covered = {
        "billion_laughs.xml",
        "quadratic_blowup.xml",
        "xxe_file.xml",
        "xxe_parameter_entity.xml",
        "external_dtd.xml",
        "utf16_external_dtd.xml",
        "undeclared_entity.xml",
        "malformed_unclosed.xml",
    }
    assert {p.name for p in XML_VECTORS.glob("*.xml")} == covered


def test_external_dtd_is_never_opened(tmp_path: Path) -> None:
    """Run in a child under strace-free observation: the DTD file is replaced by a FIFO that would block."""
    import os

    fifo = tmp_path / "blocking.dtd"
    os.mkfifo(fifo)
    doc = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a SYSTEM "{fifo}"><a/>'.encode("utf-16")
    code = (
        "import sys; from signing.xml import parse_xml\n"
        "try:\n    parse_xml(sys.stdin.buffer.read())\nexcept Exception as e:\n    print(e.code)\n"
    )
    # Opening a FIFO for reading blocks until a writer comes: a parser that opened it would hang.
    out = subprocess.run([sys.executable, "-c", code], input=doc, capture_output=True, timeout=30, check=True)
    assert out.stdout.decode().strip() == "XML_DTD_FORBIDDEN"


def test_too_large_document_is_rejected_before_parsing() -> None:
    with pytest.raises(XmlError) as info:
        parse_xml(b"<a>" + b"x" * 2048 + b"</a>", limits=ParserLimits(max_bytes=1024))
    assert info.value.code == "XML_TOO_LARGE"
    assert info.value.http_status == 413


@pytest.mark.parametrize("depth", [129, 300, 5000])
def test_deep_nesting_is_rejected(depth: int) -> None:
    with pytest.raises(XmlError) as info:
        parse_xml(b"<a>" * depth + b"</a>" * depth)
    assert info.value.code == "XML_TOO_DEEP"


def test_nesting_at_the_limit_is_accepted() -> None:
    assert parse_xml(b"<a>" * 128 + b"</a>" * 128).tag == "a"
    with pytest.raises(XmlError) as info:
        parse_xml(b"<a>" * 11 + b"</a>" * 11, limits=ParserLimits(max_depth=10))
    assert info.value.code == "XML_TOO_DEEP"


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "XML_MALFORMED"), (b"   ", "XML_MALFORMED"), (b"<a><b></a>", "XML_MALFORMED"), (b"<p:a/>", "XML_MALFORMED")],
)
def test_malformed_inputs(data: bytes, code: str) -> None:
    with pytest.raises(XmlError) as info:
        parse_xml(data)
    assert info.value.code == code


def test_doctype_text_inside_content_is_not_a_doctype() -> None:
    root = parse_xml(b"<a><![CDATA[<!DOCTYPE x>]]>&lt;!DOCTYPE y&gt;</a>")
    assert root.text == "<!DOCTYPE x><!DOCTYPE y>"


def test_captured_vnsw_sample_parses() -> None:
    root = parse_xml(
        (
            Path(__file__).parents[1]
            / "vectors"
            / "corpus"
            / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml"
        ).read_bytes()
    )
    assert root.find("Header/Subject/documentType").text == "BNNPTNT0600011"


LIBXML2_TEXT_LIMIT = 10_000_000
"""libxml2's own limit on one text node without ``huge_tree``."""
_PAD = b"QUJD" * (LIBXML2_TEXT_LIMIT // 4 + 250_000)  # one base64 text node of 11 MB


def test_a_base64_text_node_above_libxml2s_10_mb_limit_is_parsed_whole_within_our_limit() -> None:
    root = parse_xml(b"<Doc><Attachment>" + _PAD + b"</Attachment></Doc>")
    attachment = root.find("Attachment")
    assert attachment is not None and attachment.text is not None and len(attachment.text) == len(_PAD)


def test_a_large_document_is_still_refused_above_the_callers_limit() -> None:
    data = b"<Doc><Attachment>" + _PAD + b"</Attachment></Doc>"
    with pytest.raises(XmlError) as info:
        parse_xml(data, limits=ParserLimits(max_bytes=len(data) - 1))
    assert info.value.code == "XML_TOO_LARGE"
    assert str(len(data) - 1) in info.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;' + _PAD + b"</a>", "XML_DTD_FORBIDDEN"),
        (b"<a>&x;" + _PAD + b"</a>", "XML_ENTITY_FORBIDDEN"),
        (b"<a>" * 300 + _PAD + b"</a>" * 300, "XML_TOO_DEEP"),
        (b"<a>" * 5000 + _PAD + b"</a>" * 5000, "XML_TOO_DEEP"),
        (b"<a>" + _PAD, "XML_MALFORMED"),
    ],
    ids=["internal-subset", "undeclared-entity", "depth-300", "depth-5000", "unclosed"],
)
def test_a_document_above_libxml2s_text_limit_keeps_every_protection(data: bytes, code: str) -> None:
    assert len(data) > LIBXML2_TEXT_LIMIT
    with pytest.raises(XmlError) as info:
        parse_xml(data)
    assert info.value.code == code


_CORPUS = sorted((Path(__file__).parents[1] / "vectors").rglob("*.xml"))


@pytest.mark.parametrize("path", _CORPUS, ids=lambda p: p.name)
def test_every_vector_serializes_to_the_same_bytes_either_way(path: Path) -> None:
    data = path.read_bytes()
    try:
        root = parse_xml(data)
    except XmlError:
        return  # an attack vector: nothing to serialize
    for node in (root, root.getroottree(), next(iter(root), root)):
        for declaration in (True, False):
            utf8 = serialize(node, declaration=declaration)
            assert serialize(node, declaration=declaration, ascii=True) == utf8
    assert ascii_only(data, root) == (data.isascii() and b"&#" not in data)


def test_awkward_ascii_content_serializes_to_the_same_bytes_either_way() -> None:
    data = (
        b'<a xmlns="urn:x" xmlns:p="urn:p" b="1&quot;2&apos;&lt;&gt;&amp;" c="x&#10;y"><p:c/>t&gt;&lt;&amp;\r\n'
        b"<?pi x?><![CDATA[<x>]]><d/>tail</a>\n"
    )
    root = parse_xml(data)
    assert not ascii_only(data, root)  # a character reference: it could name any character
    plain = data.replace(b"&#10;", b" ")
    root = parse_xml(plain)
    assert ascii_only(plain, root)
    assert serialize(root, ascii=True) == serialize(root) and serialize(root[1], ascii=True) == serialize(root[1])


@pytest.mark.parametrize(
    "data",
    [
        "<a>\u00e9</a>".encode(),
        b"<a>&#xe9;</a>",
        b"<?xml version='1.0' encoding='UTF-7'?><a>+AOk-</a>",
    ],
    ids=["utf-8-bytes", "character-reference", "utf-7-declared"],
)
def test_a_document_that_can_hold_other_than_ascii_is_not_ascii_only(data: bytes) -> None:
    root = parse_xml(data)
    assert not ascii_only(data, root)
    assert serialize(root, ascii=True) == serialize(root)  # the bytes are right either way, only dearer
