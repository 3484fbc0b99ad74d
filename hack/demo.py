"""The demo behind `make demo`: the sales-pipeline backfill on the local control plane."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devcluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "demo"
BACKFILL = "sales-pipeline-2024"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"operator exited {proc.returncode}; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"operator not healthy after 60 s; log:\n{log.read_text()[-3000:]}")


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
    operator: subprocess.Popen[bytes] | None = None
    try:
        say("installing the CRDs")
        print(cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds")).stdout.strip())
        for crd in ("backfills.backfill.dev", "partitionedjobs.backfill.dev"):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}")

        say("starting the operator (backfill-operator run)")
        metrics_port, liveness_port = free_port(), free_port()
        log = data_dir / "operator.log"
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backfill_operator",
                "run",
                "--all-namespaces",
                "--standalone",
                "--metrics-port",
                str(metrics_port),
                "--metrics-address",
                "127.0.0.1",
                "--liveness-port",
                str(liveness_port),
            ],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_healthy(liveness_port, operator, log)
        print(f"   metrics on http://127.0.0.1:{metrics_port}/metrics; log in {log}")

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
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            text = response.read().decode()
        for line in text.splitlines():
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
            if operator is not None and operator.poll() is None:
                os.killpg(operator.pid, signal.SIGTERM)
                try:
                    operator.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(operator.pid, signal.SIGKILL)
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
