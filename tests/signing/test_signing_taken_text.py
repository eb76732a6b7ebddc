"""A large text taken out of its tree (:func:`signing.xml.take_text`) is written and digested from outside it: the
serialization and every canonical digest are the bytes libxml2 makes of the whole tree; text that any output
writes otherwise is left in the tree; an output that does not hold the marker exactly once is made from the whole
tree, with the text put back."""

from __future__ import annotations

import base64
import os

import pytest
from lxml import etree

from signing.algorithms import (
    C14N_EXCLUSIVE,
    C14N_EXCLUSIVE_WITH_COMMENTS,
    C14N_INCLUSIVE,
    C14N_INCLUSIVE_WITH_COMMENTS,
    SHA256_DIGEST,
    SHA512_DIGEST,
    DigestAlgorithm,
    canonical_digest,
    canonicalize,
)
from signing.xml import LARGE_TEXT, parse_xml, serialize, take_text

BULK = base64.b64encode(os.urandom(LARGE_TEXT)).decode("ascii")  # 4/3 MiB of base64


def _document(extra: str = "") -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<e:Eco xmlns:e="urn:test:eco" xmlns:x="urn:test:unused" no="1 &amp; 2">'
        f"<e:Exporter>Minh Phu &amp; Co &lt;JSC&gt; {extra}</e:Exporter>\n"
        f'<e:Scan type="pdf">{BULK}</e:Scan><e:Tail>&#x4E2D;</e:Tail></e:Eco>'
    ).encode()


@pytest.mark.parametrize("ascii", [True, False])
@pytest.mark.parametrize("extra", ["", "Xuất khẩu"])
def test_large_text_taken_out_serializes_as_the_whole_tree(ascii: bool, extra: str) -> None:
    whole = parse_xml(_document(extra))
    expected = serialize(whole, ascii=ascii)
    root = parse_xml(_document(extra))
    taken = take_text(root)
    assert taken is not None and taken.element.tag == "{urn:test:eco}Scan"
    assert len(serialize(root, ascii=ascii)) < LARGE_TEXT  # the tree itself no longer holds it
    assert serialize(root, ascii=ascii, taken=taken) == expected
    assert serialize(root.getroottree(), ascii=ascii, taken=taken) == serialize(whole.getroottree(), ascii=ascii)
    taken.put_back()
    assert serialize(root, ascii=ascii) == expected


@pytest.mark.parametrize(
    "method", [C14N_EXCLUSIVE, C14N_EXCLUSIVE_WITH_COMMENTS, C14N_INCLUSIVE, C14N_INCLUSIVE_WITH_COMMENTS]
)
@pytest.mark.parametrize("digest", [SHA256_DIGEST, SHA512_DIGEST])
def test_large_text_taken_out_digests_as_the_whole_tree_in_every_canonical_form(
    method: str, digest: DigestAlgorithm
) -> None:
    whole = parse_xml(_document("Xuất khẩu"))
    root = parse_xml(_document("Xuất khẩu"))
    taken = take_text(root)
    assert taken is not None
    for node, of_whole in ((root.getroottree(), whole.getroottree()), (root[1], whole[1]), (root, whole)):
        expected = digest.digest(canonicalize(of_whole, method))
        assert canonical_digest(node, method, digest, taken=taken) == expected
    assert taken.text is not None  # still out of the tree


@pytest.mark.parametrize(
    "text",
    [BULK[:-1] + "&amp;", BULK[:-1] + "&lt;", BULK[:-1] + "&gt;", BULK[:-1] + "&#13;", BULK[:-1] + "é", BULK[:100]],
)
def test_text_any_output_writes_otherwise_or_a_small_one_is_left_in_the_tree(text: str) -> None:
    root = parse_xml(f"<Eco><Scan>{text}</Scan></Eco>".encode())
    assert take_text(root) is None
    assert len(root[0].text or "") > 50


def test_marker_found_twice_puts_the_text_back_and_the_output_is_made_from_the_whole_tree() -> None:
    whole = parse_xml(_document())
    root = parse_xml(_document())
    taken = take_text(root)
    assert taken is not None
    root[0].set("copy", taken.marker)
    whole[0].set("copy", taken.marker)
    digest = SHA256_DIGEST.digest(canonicalize(whole, C14N_EXCLUSIVE))
    assert canonical_digest(root, C14N_EXCLUSIVE, SHA256_DIGEST, taken=taken) == digest
    assert taken.text is None and root[1].text == BULK
    assert serialize(root, taken=taken) == serialize(whole)


def test_text_after_a_child_element_is_not_taken() -> None:
    root = parse_xml(f"<Eco><Scan><Page/>{BULK}</Scan></Eco>".encode())
    assert take_text(root) is None
    assert etree.tostring(root).count(BULK.encode()) == 1
