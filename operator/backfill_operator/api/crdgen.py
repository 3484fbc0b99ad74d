"""Generate the CustomResourceDefinitions from the pydantic models in :mod:`.model`.

``python -m backfill_operator.api.crdgen --write`` (``make crds``) writes ``crds/`` and the
chart's copy (``charts/backfill-operator/crds/``); ``--check`` exits 1 when either is stale.
The output is a *structural* schema (Kubernetes "Specifying a structural schema"): every node
has a type, ``$ref``/``anyOf`` are inlined, ``Optional[X]`` becomes plain ``X`` (optional
fields are simply not required), and CEL rules travel as ``x-kubernetes-validations``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .model import (
    BACKFILLS,
    GROUP,
    PARTITIONED_JOBS,
    VERSION,
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
)

_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "format",
    "items",
    "properties",
    "required",
    "additionalProperties",
}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref`` and collapse ``anyOf: [X, null]`` into ``X``; drop non-Kubernetes keys."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)
        return _resolve(target, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']!r} in a structural schema")
        merged = copy.deepcopy(options[0])
        merged.update({k: v for k, v in node.items() if k != "anyOf"})
        if merged.get("default", 0) is None:
            del merged["default"]
        return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        elif key == "description":
            out[key] = " ".join(str(value).replace("``", "").split())
        elif key in _KEEP:
            out[key] = _resolve(value, defs)
    if out.get("type") == "object" and "properties" not in out:
        out.setdefault("x-kubernetes-preserve-unknown-fields", True)
    if "default" in out and out["default"] in ({}, []):
        del out["default"]
    if out.get("type") == "object" and out.get("additionalProperties") is True:
        del out["additionalProperties"]
    return out


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """Return the structural OpenAPI v3 schema of ``model`` (dict, JSON-compatible)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved: dict[str, Any] = _resolve(raw, defs)
    return resolved


def _condition_column(name: str, condition: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status',
        "priority": 1,
    }


def _crd(
    *,
    kind: str,
    plural: str,
    short: list[str],
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["backfill-operator"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_for(spec),
                                "status": schema_for(status),
                            },
                        }
                    },
                }
            ],
        },
    }


def build_crds() -> dict[str, dict[str, Any]]:
    """Return ``{file name: CRD manifest}`` for PartitionedJob and Backfill."""
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    return {
        f"{GROUP}_partitionedjobs.yaml": _crd(
            kind="PartitionedJob",
            plural=PARTITIONED_JOBS,
            short=["pj"],
            spec=PartitionedJobSpec,
            status=PartitionedJobStatus,
            description="What runs, and how it is partitioned (cron schedule or static values).",
            columns=[
                {
                    "name": "Schedule",
                    "type": "string",
                    "jsonPath": ".spec.partitions.schedule.cron",
                },
                {
                    "name": "TimeZone",
                    "type": "string",
                    "jsonPath": ".spec.partitions.schedule.timeZone",
                },
                {"name": "Partitions", "type": "string", "jsonPath": ".status.description"},
                {
                    "name": "Ready",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                },
                {
                    "name": "Last-Scheduled",
                    "type": "string",
                    "jsonPath": ".status.runs.lastScheduled",
                },
                {"name": "Lag", "type": "integer", "jsonPath": ".status.runs.lagSeconds"},
                {"name": "Missed", "type": "integer", "jsonPath": ".status.runs.missed.count"},
                {
                    "name": "Suspended",
                    "type": "boolean",
                    "jsonPath": ".spec.runs.suspend",
                    "priority": 1,
                },
                age,
            ],
        ),
        f"{GROUP}_backfills.yaml": _crd(
            kind="Backfill",
            plural=BACKFILLS,
            short=["bf"],
            spec=BackfillSpec,
            status=BackfillStatus,
            description="One request to run a set of partitions of a PartitionedJob.",
            columns=[
                {"name": "Job", "type": "string", "jsonPath": ".spec.jobRef.name"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
                {"name": "Running", "type": "integer", "jsonPath": ".status.counts.running"},
                {"name": "Failed", "type": "integer", "jsonPath": ".status.counts.failed"},
                _condition_column("Ready", "Ready"),
                _condition_column("Stalled", "Stalled"),
                age,
            ],
        ),
    }


def render(crd: dict[str, Any]) -> str:
    """Return the YAML text of one CRD, with a header saying it is generated."""
    header = (
        "# Generated by `make crds` (python -m backfill_operator.api.crdgen --write); "
        "do not edit.\n"
    )
    return header + str(yaml.safe_dump(crd, sort_keys=False, width=100))


#: Where ``--write`` puts the files, relative to the repository root.
TARGETS = ("crds", "charts/backfill-operator/crds")


def main(argv: list[str] | None = None) -> int:
    """Write (``--write DIR``) or check (``--check``) the generated CRDs; return an exit code."""
    parser = argparse.ArgumentParser(prog="python -m backfill_operator.api.crdgen")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write crds/ and the chart's copy")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    mode.add_argument("--stdout", action="store_true", help="print all CRDs")
    args = parser.parse_args(argv)
    crds = build_crds()
    if args.stdout:
        sys.stdout.write("---\n".join(render(c) for c in crds.values()))
        return 0
    stale = []
    for target in TARGETS:
        for name, crd in crds.items():
            path = args.root / target / name
            text = render(crd)
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            elif not path.exists() or path.read_text() != text:
                stale.append(str(path))
    if stale:
        print("stale CRDs (run `make crds`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
