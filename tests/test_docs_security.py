"""docs/security.md cites the tests that prove each check: every cited test must exist, so the page cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "security.md"
VECTORS = ROOT / "tests" / "vectors"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([^\]`]+)\])?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def _cited() -> list[tuple[str, str, str | None]]:
    return [(m[1], m[2], m[3]) for m in REFERENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_threat_model_cites_tests() -> None:
    cited = _cited()
    assert len(cited) >= 100
    assert {path for path, _, _ in cited} >= {
        "tests/adapters/test_adapters_as4_admission.py",
        "tests/gateway/test_gateway_transport.py",
        "tests/signing/test_signing_vectors.py",
    }


def test_every_test_the_threat_model_cites_exists() -> None:
    vector_files = {p.name for p in VECTORS.rglob("*") if p.is_file()}
    missing = []
    for path, name, case in _cited():
        module = ROOT / path
        if not module.is_file() or name not in _tests_in(module):
            missing.append(f"{path}::{name}")
            continue
        if case is not None:
            # A parametrized case: each part of its id is a vector file or appears in the test module.
            source = module.read_text(encoding="utf-8")
            if not all(part in vector_files or part in source for part in case.split("-")):
                missing.append(f"{path}::{name}[{case}]")
    assert not missing, f"docs/security.md cites tests that do not exist: {missing}"


def test_the_readme_links_the_threat_model() -> None:
    assert "(docs/security.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
