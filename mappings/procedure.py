"""Ministry procedure formats whose message is one XSD-described content root (no VNSW envelope).

A procedure onboarded with ``nswgw procedure scaffold`` and finished by hand is a :class:`ContentFormat`:
its declarative table (:mod:`mappings.xmlspec`) and the shipped XSD its output must validate against.
Reading is lenient (namespaces ignored, unknown elements skipped, missing elements absent); writing is
strict (every required element, then the XSD).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.errors import ValidationFailed, ValidationIssue
from mappings.model import TradeMessage
from mappings.registry import MessageFormat, build_message
from mappings.xmlformat import emit_strict, local_name, parse_root
from mappings.xmlspec import Group, leaves, read

__all__ = ["ContentFormat"]


class ContentFormat(MessageFormat):
    """A procedure message: the content root ``spec.tag`` mapped by ``spec``, written valid against ``xsd``."""

    spec: ClassVar[Group]
    xsd: ClassVar[str]
    """The shipped XSD (``mappings/schemas/<xsd>``)."""
    nsmap: ClassVar[dict[str | None, str]] = {}
    """Namespace prefixes of the emitted root."""

    def parse(self, data: bytes) -> TradeMessage:
        root = parse_root(data)
        expected = self.spec.tag.rsplit("}", 1)[-1]
        if local_name(root) != expected:
            raise ValidationFailed(
                [
                    ValidationIssue(
                        f"/{local_name(root)}", "ROOT_UNEXPECTED", f"the {self.name} root element is {expected}"
                    )
                ]
            )
        issues: list[ValidationIssue] = []
        ctx: dict[str, Any] = {}
        read(self.spec, root, ctx, issues, where=f"/{expected}", local_names=True)
        if issues:
            raise ValidationFailed(issues)
        return build_message(ctx)

    def emit(self, msg: TradeMessage) -> bytes:
        return emit_strict(self.spec, msg.model_dump(mode="python"), self.nsmap, self.xsd)

    def mapping_table(self) -> list[tuple[str, str]]:
        tag = self.spec.tag.rsplit("}", 1)[-1]
        return [(f"/{tag}{native}", harmonized) for native, harmonized, _ in leaves(self.spec)]
