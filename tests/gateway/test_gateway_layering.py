"""Layering of the production packages, read from their source with ``ast`` (nothing is imported).

* No production module (gateway/, signing/, mappings/, adapters/, outside their ``dev/`` folders)
  imports the development helpers ``signing.dev`` or ``gateway.dev``, at module level or inside a
  function: the demo, the development PKI and the benchmarks stay out of a production deployment.
* No module of gateway/ imports ``adapters`` at module level: the core declares the contracts it calls
  (gateway/ports.py) and adapters implement them; only code run on demand (the composition root inside
  a function) may reach for an adapter.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_PACKAGES = ("gateway", "signing", "mappings", "adapters")
DEV_PACKAGES = ("signing.dev", "gateway.dev")


def _production_modules(*packages: str) -> list[Path]:
    modules = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "dev" in parts[:-1] or "__pycache__" in parts:
                continue
            modules.append(path)
    return modules


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """The absolute module names an import statement loads (relative imports resolved against ``path``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    # ``from signing import dev`` loads signing.dev: name the submodules too.
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _imports_of(node: ast.Import | ast.ImportFrom, path: Path, package: str) -> str | None:
    """The first module of ``package`` the statement imports, or None."""
    return next((name for name in _imported(node, path) if _within(name, package)), None)


def _all_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: every statement except those inside a function body."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_packages_are_found() -> None:
    names = {_module_name(p) for p in _production_modules(*PRODUCTION_PACKAGES)}
    assert {"gateway.api", "signing.keys", "signing.revocation", "adapters"} <= names
    assert not any(_within(n, dev) for n in names for dev in DEV_PACKAGES)


def test_relative_imports_are_resolved() -> None:
    path = ROOT / "signing" / "cli.py"
    (node,) = ast.parse("from .dev import bench").body
    assert isinstance(node, ast.ImportFrom)
    assert "signing.dev.bench" in _imported(node, path)


@pytest.mark.parametrize("dev", DEV_PACKAGES)
def test_no_production_module_imports_development_helpers(dev: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
        for path in _production_modules(*PRODUCTION_PACKAGES)
        for node in _all_imports(_parse(path))
        if (name := _imports_of(node, path, dev))
    ]
    assert not offenders, f"production modules import the development package {dev}:\n" + "\n".join(sorted(offenders))


def test_the_core_does_not_import_adapters_at_module_level() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name} at module level"
        for path in _production_modules("gateway")
        for node in _module_level_imports(_parse(path))
        if (name := _imports_of(node, path, "adapters"))
    ]
    assert not offenders, "gateway/ imports adapters at module level (declare the contract in gateway/ports.py):\n" + (
        "\n".join(sorted(offenders))
    )
