"""``backfill-operator``: run the operator (``run``) or print the CRDs (``crds``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time

import kopf

from .api.crdgen import main as crdgen_main
from .controller import handlers, kube, metrics
from .controller.jobcache import JobCache
from .controller.reconciler import Reconciler
from .controller.runtime import Runtime

#: Seconds a replica's keep-alive in the peering object stays valid (``--peering-lifetime``).
#: A standby takes over once the active replica's last keep-alive is this old, so at most this
#: long after the active one died (plus one pass); kopf's own default, 60, made that ~40 s.
#: kopf refreshes the keep-alive every ``max(1, lifetime - randint(5, 10))`` seconds (its
#: ``engines/peering.keepalive``), i.e. every 1 to 5 s at 10.
DEFAULT_PEERING_LIFETIME = 10
#: Below this kopf would still refresh once a second, leaving less than 4 s of slack for a
#: keep-alive that is late (a slow apiserver) before a live replica looks dead to the others.
MIN_PEERING_LIFETIME = 5


def _peering_lifetime(text: str) -> int:
    value = int(text)
    if value < MIN_PEERING_LIFETIME:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_PEERING_LIFETIME} seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backfill-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="watch this namespace (repeat)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch all (default)")
    run.add_argument("--metrics-port", type=int, default=8080, help="/metrics port (0: off)")
    run.add_argument("--metrics-address", default="0.0.0.0", help="/metrics bind address")
    run.add_argument("--liveness-port", type=int, default=8081, help="kopf /healthz port (0: off)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument("--peering", default=None, help="kopf peering object name")
    peering.add_argument(
        "--standalone", action="store_true", help="no peering (exactly one replica)"
    )
    run.add_argument(
        "--priority",
        type=int,
        default=None,
        help="kopf peering priority (default with --peering: random, so replicas differ)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=_peering_lifetime,
        default=DEFAULT_PEERING_LIFETIME,
        metavar="SECONDS",
        help=(
            "with --peering: how long a replica's keep-alive stays valid, so how long after "
            f"the active replica died a standby takes over (default {DEFAULT_PEERING_LIFETIME}, "
            f"at least {MIN_PEERING_LIFETIME})"
        ),
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    crds = sub.add_parser("crds", help="print the CRDs (YAML)")
    crds.set_defaults(command="crds")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``backfill-operator`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "crds":
        return crdgen_main(["--stdout"])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf logs every handler call at INFO; keep the log for what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    api = kube.load_client()
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.metrics_address)
    reconciler = Reconciler(
        kube.Kube(api), metrics.Metrics(), background=True, jobs=JobCache(time.monotonic)
    )
    runtime = Runtime(reconciler)
    assert handlers.backfill_worker is not None  # importing handlers registers them with kopf
    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    priority = args.priority
    if priority is None and args.peering:
        # kopf pauses every replica whose peers share its priority; distinct priorities let
        # exactly one (the highest) run.
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    settings = kopf.OperatorSettings()
    # The startup handler (controller/handlers.configure) sets the rest, on this same object.
    settings.peering.lifetime = args.peering_lifetime
    asyncio.run(
        kopf.operator(
            settings=settings,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=args.standalone or args.peering is None,
            peering_name=args.peering,
            priority=priority,
            liveness_endpoint=liveness,
            memo=kopf.Memo(runtime=runtime),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
