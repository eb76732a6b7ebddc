"""MOH cosmetics: the NSW -> MOH web-service call ``getMessageFromNSWCosmetic`` (namespace ``http://ws.viettel.com/``).

Corpus ``ministry_ws_schemas/MOH_CosmeticServiceBYT_getMessageFromNSWCosmetic.xsd`` (the JAX-WS schema of
the ministry's ``CosmeticServiceBYT`` service). Onboarded with ``nswgw procedure scaffold`` and finished by
hand. The request's only element, ``name`` (unqualified, optional), is not a name: the service receives
the whole NSW message as text in it, so it is the harmonized document's body text (``document.content``).
The XSD lets ``name`` out; writing requires it (a call without the message carries nothing). The cosmetics
dossier inside the text has no XSD in the corpus and is not mapped; nor is the response (``return``).
"""

from __future__ import annotations

from typing import ClassVar

from mappings.procedure import ContentFormat
from mappings.registry import register
from mappings.xmlspec import Group, Leaf

__all__ = ["NAMESPACE", "REQUEST", "MohCosmetic"]

NAMESPACE = "http://ws.viettel.com/"

REQUEST = Group(
    f"{{{NAMESPACE}}}getMessageFromNSWCosmetic",
    children=(Leaf("name", "document.content", required=True),),
)
"""``getMessageFromNSWCosmetic``: the NSW message as text in ``name``."""


class MohCosmetic(ContentFormat):
    """MOH cosmetics web-service request ``getMessageFromNSWCosmetic``."""

    name = "moh-cosmetic"
    description = "MOH cosmetics: the NSW message passed to CosmeticServiceBYT getMessageFromNSWCosmetic."
    spec = REQUEST
    xsd = "vnsw/moh_cosmetic/MOH_CosmeticServiceBYT_getMessageFromNSWCosmetic.xsd"
    nsmap: ClassVar[dict[str | None, str]] = {"tns": NAMESPACE}


register(MohCosmetic)
