"""The onboarding conformance kit for ministries and partners (``nswgw conformance run|list|pki``).

* :mod:`conformance.model`: :class:`Case` (id, profile, title, prerequisite, predicate, severity, role),
  :class:`Exchange`, :class:`CaseResult`, :class:`RunReport`;
* :mod:`conformance.registry`: profiles and the ``@case`` decorator;
* :mod:`conformance.runner`: :func:`run_profile`, :class:`CaseContext`;
* :mod:`conformance.report`: JUnit XML, JSON and self-contained HTML reports;
* :mod:`conformance.settings`: what the kit knows about the party (TOML);
* :mod:`conformance.pki`: the kit's certificates of every kind;
* :mod:`conformance.listener`: the kit as receiver;
* :mod:`conformance.profiles`: ``rest-intermediary``, ``vnsw-ministry``, ``asw-formd``, ``asw-acdd``;
* :mod:`conformance.broken_peer`: the deliberately broken reference peer (the kit's own test subject).
"""

from conformance.model import Case, CaseResult, Exchange, Outcome, RunReport, Severity
from conformance.registry import case, cases, get_profile, profile, profiles
from conformance.report import write_reports
from conformance.runner import CaseContext, run_profile
from conformance.settings import KitSettings, RunOptions, load_settings

__all__ = [
    "Case",
    "CaseResult",
    "Exchange",
    "Outcome",
    "RunReport",
    "Severity",
    "case",
    "cases",
    "get_profile",
    "profile",
    "profiles",
    "write_reports",
    "CaseContext",
    "run_profile",
    "KitSettings",
    "RunOptions",
    "load_settings",
]
