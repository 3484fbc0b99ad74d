"""The pure core never reads the clock; the generated CRDs are current."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backfill_operator.api import crdgen

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "backfill_operator"
PURE = [
    *sorted(
        str(p.relative_to(PACKAGE).with_suffix(""))
        for room in ("api", "planning")
        for p in (PACKAGE / room).glob("*.py")
    ),
    "controller/builders",
]
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_not_call_the_clock(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    ]
    assert calls == [], f"{module} reads the clock: {calls}"


def test_generated_crds_are_current() -> None:
    assert crdgen.main(["--check", "--root", str(ROOT)]) == 0, "run `make crds`"


def test_crd_schema_is_structural() -> None:
    """Every schema node has a type (or preserves unknown fields), as the apiserver requires."""

    def walk(node: dict[str, object], path: str) -> None:
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for name, sub in (node.get("properties") or {}).items():  # type: ignore[attr-defined]
            walk(sub, f"{path}.{name}")
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{path}[]")

    for crd in crdgen.build_crds().values():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema, crd["metadata"]["name"])
