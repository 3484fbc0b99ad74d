"""Command line: ``python -m devcluster {up,down,status,env} [--data-dir DIR]``.

``up`` prints progress on stderr and, as its only stdout line, ``export KUBECONFIG=...``, so
``eval "$(python -m devcluster up)"`` works. ``up --kueue`` also starts Kueue (kueue.py);
``down`` stops a Kueue recorded in the data dir first. Exit codes: 0 success, 1 failure,
2 usage error, 3 (status/env) no cluster recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .binaries import BinariesError, default_data_dir
from .cluster import Cluster, ClusterError, NotRunning
from .components import DEFAULT_CONTROLLERS
from .kueue import Kueue, KueueError
from .pki import PkiError

EXIT_NOT_RUNNING = 3


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()


def cmd_up(args: argparse.Namespace) -> int:
    """Start the cluster; with --foreground stay attached and stop it on Ctrl-C/SIGTERM."""
    # SIGINT too: a shell starts background jobs with SIGINT ignored, which Python keeps.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    data_dir = _data_dir(args)
    _err(f"devcluster: starting the control plane in {data_dir}")
    try:
        cluster = Cluster.start(
            data_dir,
            bin_dir=args.bin_dir,
            nodes=args.nodes,
            tie_to_parent=args.foreground,
            keep_data=args.keep_data,
            controllers=tuple(args.controllers.split(",")),
            timeout_seconds=args.timeout,
            progress=lambda message: _err(f"devcluster:   {message}"),
        )
    except KeyboardInterrupt:
        _err("devcluster: interrupted; stopped everything that had started")
        return 1
    except (ClusterError, BinariesError, PkiError, OSError) as exc:
        _err(f"devcluster: up failed: {exc}")
        return 1
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in cluster.timings.items() if k != "total")
    _err(f"devcluster: ready in {cluster.timings['total']:.1f} s ({phases})")
    _err(f"devcluster: API server {cluster.server}; binaries in {cluster.bin_dir}")
    kueue: Kueue | None = None
    if args.kueue:
        try:
            kueue = Kueue.start(
                cluster,
                tie_to_parent=args.foreground,
                progress=lambda message: _err(f"devcluster:   {message}"),
            )
        except (
            KeyboardInterrupt,
            KueueError,
            PkiError,
            subprocess.SubprocessError,
            OSError,
        ) as exc:
            _err(f"devcluster: Kueue did not start: {exc}; stopping the cluster")
            cluster.stop()
            return 1
        _err(
            f"devcluster: Kueue ready in {kueue.timings['total']:.1f} s (pid {kueue.pid}, "
            f"webhook https://127.0.0.1:{kueue.webhook_port}, log {kueue.log_path})"
        )
    _err(f"devcluster: logs in {data_dir / 'logs'}; stop with `python -m devcluster down`")
    print(cluster.env_line(), flush=True)
    if not args.foreground:
        return 0
    _err("devcluster: running in the foreground; Ctrl-C stops the cluster")
    try:
        gone = cluster.wait_for_exit()
        _err(f"devcluster: {gone.name} exited; stopping the rest (log: {gone.log})")
        code = 1
    except KeyboardInterrupt:
        _err("devcluster: stopping")
        code = 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the stop finish
        if kueue is not None:
            kueue.stop()
        cluster.stop()
    return code


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the cluster recorded in the data directory (a no-op when there is none)."""
    try:
        cluster = Cluster.load(_data_dir(args))
    except NotRunning as exc:
        _err(f"devcluster: {exc}; nothing to stop")
        return 0
    except ClusterError as exc:
        _err(f"devcluster: {exc}")
        return 1
    killed: list[str] = []
    with contextlib.suppress(FileNotFoundError):  # no Kueue recorded
        try:
            kueue = Kueue.load(cluster)
            killed += kueue.stop(grace_seconds=args.grace_seconds)
            _err("devcluster: stopped kueue")
        except (KueueError, RuntimeError) as exc:
            _err(f"devcluster: {exc}")
            return 1
    try:
        killed += cluster.stop(grace_seconds=args.grace_seconds)
    except RuntimeError as exc:
        _err(f"devcluster: {exc}")
        return 1
    names = ", ".join(r.name for r in cluster.records) or "nothing"
    _err(f"devcluster: stopped {names}" + (f" (SIGKILL: {', '.join(killed)})" if killed else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print each process (pid, port, memory, log) and whether the API server is ready."""
    try:
        cluster = Cluster.load(_data_dir(args))
    except NotRunning as exc:
        print(f"not running: {exc}")
        return EXIT_NOT_RUNNING
    except ClusterError as exc:
        _err(f"devcluster: {exc}")
        return 1
    rows = cluster.status()
    print(f"data dir:   {cluster.data_dir}")
    print(f"API server: {cluster.server} ({'ready' if cluster.api_ready() else 'NOT ready'})")
    print(f"kubeconfig: {cluster.kubeconfig}")
    print(f"{'component':<24} {'pid':>8} {'state':<8} {'port':>6} {'rss MiB':>8} {'peak MiB':>9}")
    for row in rows:
        state = "running" if row.alive else "DEAD"
        print(
            f"{row.name:<24} {row.pid:>8} {state:<8} {row.port:>6} "
            f"{row.rss_kib / 1024:>8.0f} {row.peak_rss_kib / 1024:>9.0f}"
        )
    alive = [r for r in rows if r.alive]
    total_rss = sum(r.rss_kib for r in alive) / 1024
    total_peak = sum(r.peak_rss_kib for r in alive) / 1024
    print(f"{'total':<24} {'':>8} {'':<8} {'':>6} {total_rss:>8.0f} {total_peak:>9.0f}")
    if not alive:
        return EXIT_NOT_RUNNING
    return 0 if len(alive) == len(rows) and cluster.api_ready() else 1


def cmd_env(args: argparse.Namespace) -> int:
    """Print ``export KUBECONFIG=...`` for the recorded cluster."""
    try:
        cluster = Cluster.load(_data_dir(args))
    except NotRunning as exc:
        _err(f"devcluster: {exc}; run `python -m devcluster up`")
        return EXIT_NOT_RUNNING
    except ClusterError as exc:
        _err(f"devcluster: {exc}")
        return 1
    print(cluster.env_line())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the four sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--data-dir",
            help="state, logs, certificates and etcd data "
            "(default: $BACKFILL_CLUSTER_DIR or <repo>/.cluster)",
        )
        return command

    up = add("up", "start the control plane and print `export KUBECONFIG=...`")
    up.add_argument("--bin-dir", help="binaries (default: $BACKFILL_BIN_DIR or build.sh)")
    up.add_argument("--nodes", type=int, default=3, help="KWOK nodes to create (default 3)")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops")
    up.add_argument("--keep-data", action="store_true", help="keep etcd data of an earlier run")
    up.add_argument(
        "--controllers",
        default=",".join(DEFAULT_CONTROLLERS),
        help="kube-controller-manager --controllers (default: %(default)s)",
    )
    up.add_argument("--timeout", type=float, default=120.0, help="start-up deadline, seconds")
    up.add_argument(
        "--kueue",
        action="store_true",
        help="also start Kueue (needs `hack/controlplane/build.sh kueue`; see kueue.py)",
    )
    up.set_defaults(func=cmd_up)

    down = add("down", "stop every process of the recorded cluster")
    down.add_argument(
        "--grace-seconds", type=float, default=10.0, help="SIGTERM grace before SIGKILL"
    )
    down.set_defaults(func=cmd_down)

    add("status", "show what runs where").set_defaults(func=cmd_status)
    add("env", "print `export KUBECONFIG=...`").set_defaults(func=cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default sys.argv[1:]) and run the sub-command; returns the exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
