"""Start-up check: lxml and xmlsec must share one libxml2.

python-xmlsec operates on lxml's in-memory trees. If the two wheels were built
against different libxml2 versions, the structures they share differ and the
process may crash or silently mis-verify. We refuse to start instead.
"""

from __future__ import annotations

from lxml import etree

from gateway.errors import LibraryMismatch

__all__ = ["check_libxml2_versions", "libxml2_versions"]


def libxml2_versions() -> dict[str, tuple[int, ...]]:
    """The libxml2 versions lxml and xmlsec were compiled against and run with."""
    import xmlsec

    return {
        "lxml_runtime": tuple(etree.LIBXML_VERSION),
        "lxml_compiled": tuple(etree.LIBXML_COMPILED_VERSION),
        "xmlsec_runtime": tuple(xmlsec.get_libxml_version()),
        "xmlsec_compiled": tuple(xmlsec.get_libxml_compiled_version()),
    }


def check_libxml2_versions(versions: dict[str, tuple[int, ...]] | None = None) -> None:
    """Raise :class:`LibraryMismatch` (``LIBXML2_MISMATCH``) unless all four versions agree."""
    try:
        found = versions if versions is not None else libxml2_versions()
    except ImportError as exc:  # xmlsec itself refuses to import on some mismatches
        raise LibraryMismatch(
            f"xmlsec could not be imported ({exc}); reinstall with the pinned lxml and xmlsec wheels "
            "(pip install -e .) so both link the same libxml2"
        ) from exc
    if len(set(found.values())) != 1:
        listing = ", ".join(f"{k}={'.'.join(map(str, v))}" for k, v in found.items())
        raise LibraryMismatch(
            f"lxml and xmlsec use different libxml2 versions ({listing}); refusing to start. "
            "Install the versions pinned in pyproject.toml (pip install -e .), or build both from source "
            "against the system libxml2 (pip install --no-binary lxml,xmlsec lxml xmlsec)."
        )
