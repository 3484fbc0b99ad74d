"""The demo behind `make demo`: the sales-pipeline backfill on the local control plane."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from devcluster import Cluster
from devcluster.operator import OperatorProcess

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "demo"
BACKFILL = "sales-pipeline-2024"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--example", default=str(ROOT / "examples" / "sales-pipeline.yaml"))
    parser.add_argument("--backfill", default=BACKFILL)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds")
    args = parser.parse_args()
    keep = os.environ.get("KEEP") == "1"
    data_dir = Path(os.environ.get("BACKFILL_CLUSTER_DIR", ROOT / ".cluster"))

    say("starting the local control plane (etcd, kube-apiserver, controllers, scheduler, KWOK)")
    started = time.monotonic()
    cluster = Cluster.start(data_dir, progress=lambda line: print(f"   {line}", flush=True))
    print(f"   ready in {time.monotonic() - started:.1f} s; {cluster.env_line()}")
    operator: OperatorProcess | None = None
    try:
        say("installing the CRDs")
        print(cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds")).stdout.strip())
        for crd in ("backfills.backfill.dev", "partitionedjobs.backfill.dev"):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}")

        say("starting the operator (backfill-operator run)")
        operator = OperatorProcess(Path(cluster.kubeconfig), data_dir)
        operator.start()
        print(f"   metrics on {operator.metrics_url}; log in {operator.log_path}")

        say(f"applying {Path(args.example).relative_to(ROOT)}")
        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        print(cluster.kubectl("-n", NAMESPACE, "apply", "-f", args.example).stdout.strip())

        say("progress (kubectl get backfills)")
        deadline = time.monotonic() + args.timeout
        last = ""
        header_done = False
        phase = ""
        while time.monotonic() < deadline:
            out = cluster.kubectl("-n", NAMESPACE, "get", "backfill", args.backfill).stdout
            lines = out.strip().splitlines()
            if not header_done and lines:
                print("   " + lines[0])
                header_done = True
            if len(lines) > 1 and lines[1] != last:
                last = lines[1]
                print("   " + last, flush=True)
            phase = cluster.kubectl(
                "-n",
                NAMESPACE,
                "get",
                "backfill",
                args.backfill,
                "-o",
                "jsonpath={.status.phase}",
            ).stdout
            if phase in ("Succeeded", "Failed", "Invalid"):
                break
            time.sleep(1)
        else:
            print("   timed out", file=sys.stderr)

        say("final status (kubectl get backfill -o yaml: status)")
        status = cluster.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "backfill",
            args.backfill,
            "-o",
            'go-template={{range $k, $v := .status}}{{if ne $k "conditions"}}'
            "{{$k}}: {{$v}}\n{{end}}{{end}}{{range .status.conditions}}"
            "condition {{.type}}={{.status}} ({{.reason}}): {{.message}}\n{{end}}",
        ).stdout
        print("\n".join("   " + line for line in status.strip().splitlines()))
        print(
            "\n   " + cluster.kubectl("-n", NAMESPACE, "get", "jobs").stdout.replace("\n", "\n   ")
        )

        say("metrics excerpt")
        for line in operator.metrics().splitlines():
            if (
                line.startswith("backfill_")
                and "_bucket" not in line
                and (args.backfill in line or "reconcile_duration_seconds_count" in line)
            ):
                print("   " + line)
        return 0 if phase == "Succeeded" else 1
    finally:
        if keep:
            say(f"KEEP=1: left running. {cluster.env_line()}; stop with `make cluster-down`")
        else:
            say("stopping the operator and the control plane")
            if operator is not None:
                operator.stop()
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
