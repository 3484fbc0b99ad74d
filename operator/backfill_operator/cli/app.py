"""The ``kubectl backfill`` command line (Typer) and :func:`main`, the console script.

kubectl runs any executable named ``kubectl-backfill`` on ``PATH`` as ``kubectl backfill``,
passing the remaining arguments through. The global flags kubectl users expect
(``--kubeconfig``, ``--context``, ``-n/--namespace``, and ``-A`` for ``list``) are accepted
before the command and after it. Each command is a thin wrapper around a function of
:mod:`.commands`.

This module is deliberately one module: it is the whole command-line surface (every command,
flag, help text and default, and how errors and exit codes reach the terminal) in the order
``--help`` shows it, so a change to the CLI's interface is a change to this file alone.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..api.model import (
    MAX_CONCURRENCY,
    MAX_PARTITIONS_PER_JOB,
    MAX_PRIORITY,
    MAX_RETRIES,
    RESERVED_ENV,
    Order,
    Reprocess,
)
from ..planning import naming
from . import web
from .client import Target
from .commands import job_status, manage, specs, submit
from .commands import logs as logs_command
from .commands import missing as missing_command
from .commands.session import DEFAULT_INTERVAL_SECONDS, Session
from .errors import EXIT_FAILED, EXIT_USAGE, CliError

PROG = "kubectl backfill"
GLOBAL = "Global flags"

app = typer.Typer(
    name="kubectl-backfill",
    help=(
        "Run and follow backfills of PartitionedJobs: one Job per partition, under a "
        "concurrency limit (backfill-operator)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OrderFlag(enum.StrEnum):
    """``--order`` values."""

    OLDEST_FIRST = "oldest-first"
    NEWEST_FIRST = "newest-first"

    def to_model(self) -> Order:
        """Return the API value."""
        return Order.NEWEST_FIRST if self is OrderFlag.NEWEST_FIRST else Order.OLDEST_FIRST


class ReprocessFlag(enum.StrEnum):
    """``--reprocess`` values."""

    MISSING = "missing"
    FAILED = "failed"
    ALL = "all"

    def to_model(self) -> Reprocess:
        """Return the API value."""
        return {"missing": Reprocess.MISSING, "failed": Reprocess.FAILED, "all": Reprocess.ALL}[
            self.value
        ]


class PlanOutput(enum.StrEnum):
    """``plan -o`` values."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


class StatusOutput(enum.StrEnum):
    """``status -o`` values."""

    TEXT = "text"
    JSON = "json"


class MissingOutput(enum.StrEnum):
    """``missing -o`` values."""

    TEXT = "text"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


class ListOutput(enum.StrEnum):
    """``list -o`` values."""

    TABLE = "table"
    JSON = "json"
    NAME = "name"


@dataclass(frozen=True)
class Globals:
    """Global flags given before the command."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False


KubeconfigFlag = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
        rich_help_panel=GLOBAL,
        show_default=False,
    ),
]
ContextFlag = Annotated[
    str | None,
    typer.Option("--context", help="The kubeconfig context to use.", rich_help_panel=GLOBAL),
]
NamespaceFlag = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace (default: the context's namespace, else default).",
        rich_help_panel=GLOBAL,
    ),
]
AllNamespacesFlag = Annotated[
    bool,
    typer.Option(
        "--all-namespaces", "-A", help="list, ui: every namespace.", rich_help_panel=GLOBAL
    ),
]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
IntervalFlag = Annotated[
    float,
    typer.Option("--interval", min=0.1, help="Seconds between two reads when following."),
]


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("backfill-operator")
        except metadata.PackageNotFoundError:
            version = "unknown"
        typer.echo(f"kubectl-backfill {version}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
    all_namespaces: AllNamespacesFlag = False,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print the version."),
    ] = False,
) -> None:
    """Run and follow backfills of PartitionedJobs (backfill-operator's kubectl plugin).

    Exit codes: 0 success; 1 partitions failed (with --wait or status -w), a declined
    prompt, or no log; 2 usage or input errors; 3 the cluster cannot be used.
    """
    ctx.obj = Globals(kubeconfig, context, namespace, all_namespaces)


def _session(
    ctx: typer.Context,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    *,
    all_namespaces_ok: bool = False,
) -> Session:
    """Merge the global flags given before and after the command into a Session."""
    g = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    if g.all_namespaces and not all_namespaces_ok:
        raise CliError("-A/--all-namespaces applies to list and ui only")
    target = Target(
        kubeconfig=kubeconfig or g.kubeconfig,
        context=context or g.context,
        namespace=namespace or g.namespace,
    )
    return Session(
        target=target,
        out=Console(highlight=False, soft_wrap=True),
        err=Console(stderr=True, highlight=False, soft_wrap=True),
        interactive=sys.stdin.isatty(),
    )


def _check_name(name: str | None) -> None:
    if name is not None:
        problem = naming.name_problem(name)
        if problem is not None:
            raise CliError(f"--name: {problem}")


FromFlag = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="First partition (inclusive): a key or a timestamp, e.g. 2024-01-01 or "
        "2024-01-01T05:00 (the job's time zone) or RFC 3339.",
        show_default=False,
    ),
]
ToFlag = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Last partition (inclusive); default: the last complete one.",
        show_default=False,
    ),
]
PartitionsFlag = Annotated[
    str | None,
    typer.Option(
        "--partitions",
        help="Comma-separated partition keys, instead of --from/--to.",
        show_default=False,
    ),
]
OrderOpt = Annotated[OrderFlag, typer.Option("--order", help="Launch order.", case_sensitive=False)]
ReprocessOpt = Annotated[
    ReprocessFlag,
    typer.Option(
        "--reprocess",
        help="missing: only partitions without a recorded outcome; failed: also those that "
        "failed last; all: every selected partition.",
        case_sensitive=False,
    ),
]
PriorityOpt = Annotated[
    int,
    typer.Option(
        "--priority",
        help="Under the PartitionedJob's job-wide limit (its spec.concurrency; no effect "
        "without one) free slots go to higher priorities first, equal ones share evenly. "
        f"From -{MAX_PRIORITY} to {MAX_PRIORITY}.",
    ),
]
QueueOpt = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="Kueue LocalQueue in the namespace (spec.kueue.queueName): the Jobs are created "
        "suspended and Kueue starts them.",
        show_default=False,
    ),
]
QueuePriorityClassOpt = Annotated[
    str | None,
    typer.Option(
        "--queue-priority-class",
        help="Kueue WorkloadPriorityClass of the Jobs (spec.kueue.priorityClass); needs --queue.",
        show_default=False,
    ),
]


STEPS = "Steps and parameters"

StepsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--steps",
        metavar="A,B",
        help="Run only these steps of a PartitionedJob with steps (comma-separated, or "
        "repeat the flag); default: every step.",
        rich_help_panel=STEPS,
        show_default=False,
    ),
]
IncludeUpstreamOpt = Annotated[
    bool,
    typer.Option(
        "--include-upstream",
        help="With --steps: also run every step the selected steps depend on.",
        rich_help_panel=STEPS,
    ),
]
IncludeDownstreamOpt = Annotated[
    bool,
    typer.Option(
        "--include-downstream",
        help="With --steps: also run every step that depends on the selected steps.",
        rich_help_panel=STEPS,
    ),
]


@app.command()
def create(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The PartitionedJob to run.", show_default=False)],
    from_: FromFlag = None,
    to: ToFlag = None,
    partitions: PartitionsFlag = None,
    concurrency: Annotated[
        int,
        typer.Option(min=1, max=MAX_CONCURRENCY, help="At most this many Jobs at once."),
    ] = 10,
    partitions_per_job: Annotated[
        int | None,
        typer.Option(
            "--partitions-per-job",
            min=1,
            max=MAX_PARTITIONS_PER_JOB,
            help="Run up to this many consecutive partitions in one Job (PARTITION_KEY_FIRST, "
            "PARTITION_KEY_LAST, PARTITION_COUNT). Default: the PartitionedJob's, else 1.",
            show_default=False,
        ),
    ] = None,
    order: OrderOpt = OrderFlag.OLDEST_FIRST,
    reprocess: ReprocessOpt = ReprocessFlag.MISSING,
    priority: PriorityOpt = 0,
    queue: QueueOpt = None,
    queue_priority_class: QueuePriorityClassOpt = None,
    retries: Annotated[
        int,
        typer.Option(min=0, max=MAX_RETRIES, help="Extra attempts per failed partition."),
    ] = 0,
    retry_backoff: Annotated[
        int,
        typer.Option(min=0, help="Seconds before the first retry (doubling after each)."),
    ] = 10,
    max_failed: Annotated[
        int | None,
        typer.Option(
            "--max-failed", min=1, help="Stop launching once this many partitions failed."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Backfill name (default: <job>-<YYYYMMDD>-<4 hex>).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Create a dry-run Backfill: the operator writes the plan into its status and "
            "launches nothing. (`plan` previews without creating anything.)",
        ),
    ] = False,
    steps: StepsOpt = None,
    include_upstream: IncludeUpstreamOpt = False,
    include_downstream: IncludeDownstreamOpt = False,
    ignore_dependencies: Annotated[
        bool,
        typer.Option(
            "--ignore-dependencies",
            help="Run a step even when a step it depends on, outside this Backfill, has no "
            "success recorded for the partition (Airflow's -i).",
            rich_help_panel=STEPS,
        ),
    ] = False,
    ignore_first_depends_on_past: Annotated[
        bool,
        typer.Option(
            "--ignore-first-depends-on-past",
            help="Steps with dependsOnPast do not wait for the partition before the first "
            "selected one (Airflow's -I).",
            rich_help_panel=STEPS,
        ),
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            metavar="K=V",
            help="Add an environment variable to every container of the Jobs (repeatable; "
            "$(PARTITION_KEY) and the like resolve). Not: " + ", ".join(RESERVED_ENV) + ".",
            rich_help_panel=STEPS,
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="K=V",
            help="Add a label to the Jobs and pods (repeatable; not backfill.dev/ keys).",
            rich_help_panel=STEPS,
            show_default=False,
        ),
    ] = None,
    annotation: Annotated[
        list[str] | None,
        typer.Option(
            "--annotation",
            metavar="K=V",
            help="Add an annotation to the Jobs and pods (repeatable; not backfill.dev/ keys).",
            rich_help_panel=STEPS,
            show_default=False,
        ),
    ] = None,
    mark_succeeded: Annotated[
        bool,
        typer.Option(
            "--mark-succeeded",
            help="Run nothing: record the selected partitions (and steps) as succeeded in the "
            "ledger (Airflow's -m).",
            rich_help_panel=STEPS,
        ),
    ] = False,
    yes: YesFlag = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the Backfill until it ends (exit 1 if failed).")
    ] = False,
    interval: IntervalFlag = DEFAULT_INTERVAL_SECONDS,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Preview the partitions, ask, then create a Backfill (and with --wait, follow it)."""
    _check_name(name)
    spec = specs.build_spec(
        job=job,
        from_=from_,
        to=to,
        partitions=specs.parse_keys(partitions) if partitions is not None else None,
        concurrency=concurrency,
        partitions_per_job=partitions_per_job,
        order=order.to_model(),
        reprocess=reprocess.to_model(),
        retries=retries,
        retry_backoff_seconds=retry_backoff,
        max_failed=max_failed,
        dry_run=dry_run,
        priority=priority,
        queue=queue,
        queue_priority_class=queue_priority_class,
        steps=specs.parse_steps(steps),
        include_upstream=include_upstream,
        include_downstream=include_downstream,
        ignore_dependencies=ignore_dependencies,
        ignore_first_depends_on_past=ignore_first_depends_on_past,
        mark_succeeded=mark_succeeded,
        env=specs.parse_env(env),
        job_labels=specs.parse_pairs(label, "--label"),
        job_annotations=specs.parse_pairs(annotation, "--annotation"),
    )
    session = _session(ctx, kubeconfig, context, namespace)
    return submit.create(session, spec, name=name, yes=yes, wait=wait, interval=interval)


@app.command()
def plan(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The PartitionedJob.", show_default=False)],
    from_: FromFlag = None,
    to: ToFlag = None,
    partitions: PartitionsFlag = None,
    order: OrderOpt = OrderFlag.OLDEST_FIRST,
    reprocess: ReprocessOpt = ReprocessFlag.MISSING,
    priority: PriorityOpt = 0,
    queue: QueueOpt = None,
    queue_priority_class: QueuePriorityClassOpt = None,
    output: Annotated[
        PlanOutput, typer.Option("--output", "-o", help="Output format.", case_sensitive=False)
    ] = PlanOutput.TABLE,
    steps: StepsOpt = None,
    include_upstream: IncludeUpstreamOpt = False,
    include_downstream: IncludeDownstreamOpt = False,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Show the partitions a Backfill would run, in launch order; creates nothing."""
    spec = specs.build_spec(
        job=job,
        from_=from_,
        to=to,
        partitions=specs.parse_keys(partitions) if partitions is not None else None,
        concurrency=1,
        order=order.to_model(),
        reprocess=reprocess.to_model(),
        retries=0,
        retry_backoff_seconds=10,
        max_failed=None,
        dry_run=False,
        priority=priority,
        queue=queue,
        queue_priority_class=queue_priority_class,
        steps=specs.parse_steps(steps),
        include_upstream=include_upstream,
        include_downstream=include_downstream,
    )
    session = _session(ctx, kubeconfig, context, namespace)
    return submit.plan(session, spec, str(output))


BackfillArg = Annotated[str, typer.Argument(help="The Backfill.", show_default=False)]


@app.command()
def status(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="A Backfill, or a PartitionedJob: NAME is the Backfill of that name, else the "
            "PartitionedJob; bf/NAME is a Backfill, pj/NAME a PartitionedJob.",
            show_default=False,
        ),
    ],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Follow until the Backfill ends (exit 1 if it failed); a PartitionedJob "
            "until interrupted.",
        ),
    ] = False,
    output: Annotated[
        StatusOutput,
        typer.Option("--output", "-o", help="Output format.", case_sensitive=False),
    ] = StatusOutput.TEXT,
    rollup: Annotated[
        bool,
        typer.Option(
            "--rollup",
            help="For a job with steps: one grid of the partitions (all steps rolled up) "
            "instead of one row of cells per step.",
        ),
    ] = False,
    interval: IntervalFlag = DEFAULT_INTERVAL_SECONDS,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """A Backfill's progress and ETA, or a PartitionedJob's (pj/NAME) schedule and outcomes.

    A Backfill: progress, counts, rate and ETA, a grid of its partitions by state. A
    PartitionedJob: its partitions, the scheduled runs (lag, next, missed), its Backfills,
    and a grid of every complete partition by outcome. For a job with steps the grid has a
    row of cells per step (--rollup: the partitions' roll-up).
    """
    session = _session(ctx, kubeconfig, context, namespace)
    return job_status.status(
        session, name, watch=watch, output=str(output), interval=interval, rollup=rollup
    )


@app.command()
def missing(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The PartitionedJob.", show_default=False)],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Look from this partition (a key or timestamp, as create's --from); default: "
            "the first.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Look up to this partition (inclusive); default: the last complete one.",
            show_default=False,
        ),
    ] = None,
    failed: Annotated[
        bool,
        typer.Option("--failed", help="Also list the partitions whose last outcome is a failure."),
    ] = False,
    output: Annotated[
        MissingOutput,
        typer.Option(
            "--output",
            "-o",
            help="text: ranges of keys; json/yaml: every range; name: every key.",
            case_sensitive=False,
        ),
    ] = MissingOutput.TEXT,
    create_: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Then preview, ask and create the Backfill that runs them (create's flags "
            "below apply).",
        ),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(min=1, max=MAX_CONCURRENCY, help="--create: at most this many Jobs at once."),
    ] = 10,
    order: OrderOpt = OrderFlag.OLDEST_FIRST,
    priority: PriorityOpt = 0,
    queue: QueueOpt = None,
    queue_priority_class: QueuePriorityClassOpt = None,
    retries: Annotated[
        int,
        typer.Option(min=0, max=MAX_RETRIES, help="--create: extra attempts per failed partition."),
    ] = 0,
    retry_backoff: Annotated[
        int,
        typer.Option(min=0, help="--create: seconds before the first retry (doubling after each)."),
    ] = 10,
    max_failed: Annotated[
        int | None,
        typer.Option(
            "--max-failed",
            min=1,
            help="--create: stop launching once this many partitions failed.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="--create: Backfill name (default: <job>-<YYYYMMDD>-<4 hex>).", show_default=False
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="--create: a dry-run Backfill (plans, launches nothing)."),
    ] = False,
    yes: YesFlag = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="--create: follow the Backfill until it ends (exit 1 if failed)."
        ),
    ] = False,
    interval: IntervalFlag = DEFAULT_INTERVAL_SECONDS,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """List complete partitions with no outcome and no running Job; --create fills them.

    Missing: the window is complete, the PartitionedJob's ledger has no outcome for it and
    no run (scheduled or Backfill) has an active Job for it. Grouped as ranges of
    consecutive keys.
    """
    _check_name(name)
    specs.check_queueing(priority=priority, queue=queue, queue_priority_class=queue_priority_class)
    options = missing_command.FillOptions(
        concurrency=concurrency,
        order=order.to_model(),
        retries=retries,
        retry_backoff_seconds=retry_backoff,
        max_failed=max_failed,
        dry_run=dry_run,
        priority=priority,
        queue=queue,
        queue_priority_class=queue_priority_class,
    )
    session = _session(ctx, kubeconfig, context, namespace)
    return missing_command.missing(
        session,
        job,
        from_=from_,
        to=to,
        include_failed=failed,
        output=str(output),
        create=create_,
        options=options,
        name=name,
        yes=yes,
        wait=wait,
        interval=interval,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    all_namespaces: AllNamespacesFlag = False,
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.", case_sensitive=False)
    ] = ListOutput.TABLE,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """List Backfills: phase, progress, failures, age."""
    session = _session(ctx, kubeconfig, context, namespace, all_namespaces_ok=True)
    g = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    return manage.list_backfills(
        session, all_namespaces=all_namespaces or g.all_namespaces, output=str(output)
    )


SuspendArg = Annotated[
    str,
    typer.Argument(
        help="The Backfill, or pj/NAME: a PartitionedJob's scheduled runs.", show_default=False
    ),
]


@app.command()
def suspend(
    ctx: typer.Context,
    name: SuspendArg,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Launch nothing new (spec.suspend, or spec.runs.suspend for pj/NAME); Jobs finish."""
    return manage.set_suspend(_session(ctx, kubeconfig, context, namespace), name, True)


@app.command()
def resume(
    ctx: typer.Context,
    name: SuspendArg,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Launch again (spec.suspend: false, or spec.runs.suspend: false for pj/NAME)."""
    return manage.set_suspend(_session(ctx, kubeconfig, context, namespace), name, False)


@app.command()
def cancel(
    ctx: typer.Context,
    name: BackfillArg,
    yes: YesFlag = False,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Ask, then delete the Backfill; its Jobs are stopped by garbage collection."""
    return manage.cancel(_session(ctx, kubeconfig, context, namespace), name, yes=yes)


@app.command("retry-failed")
def retry_failed(
    ctx: typer.Context,
    name: BackfillArg,
    new_name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Name of the new Backfill (default: <name>-retry-<4 hex>).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_CONCURRENCY, help="Default: the original's."),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(min=0, max=MAX_RETRIES, help="Default: the original's."),
    ] = None,
    yes: YesFlag = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the new Backfill until it ends.")
    ] = False,
    interval: IntervalFlag = DEFAULT_INTERVAL_SECONDS,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Create a new Backfill of exactly the partitions that failed.

    reprocess: All for a job without steps; for a job with steps reprocess: Failed, so only
    the failed steps (and what depends on them) run again, not those that succeeded.
    """
    _check_name(new_name)
    session = _session(ctx, kubeconfig, context, namespace)
    return manage.retry_failed(
        session,
        name,
        new_name=new_name,
        concurrency=concurrency,
        retries=retries,
        yes=yes,
        wait=wait,
        interval=interval,
    )


@app.command()
def logs(
    ctx: typer.Context,
    name: BackfillArg,
    partition: Annotated[
        str, typer.Option("--partition", "-p", help="Partition key.", show_default=False)
    ],
    attempt: Annotated[
        int | None, typer.Option(min=1, help="Attempt (default: the latest).")
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", "-c", help="Container (default: all).")
    ] = None,
    tail: Annotated[int | None, typer.Option(min=0, help="Last lines only.")] = None,
    step: Annotated[
        str | None,
        typer.Option(
            "--step",
            help="The step (a job with steps; needed when the partition ran several).",
            show_default=False,
        ),
    ] = None,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Print the log of the pod that ran a partition (or say why there is none)."""
    session = _session(ctx, kubeconfig, context, namespace)
    return logs_command.logs(
        session, name, key=partition, attempt=attempt, container=container, tail=tail, step=step
    )


@app.command()
def ui(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")
    ] = web.DEFAULT_PORT,
    address: Annotated[
        str,
        typer.Option(
            "--address", help="Address to listen on (not loopback: warns; see docs/cli.md)."
        ),
    ] = "127.0.0.1",
    open_: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    all_namespaces: AllNamespacesFlag = False,
    kubeconfig: KubeconfigFlag = None,
    context: ContextFlag = None,
    namespace: NamespaceFlag = None,
) -> int:
    """Serve the partitions web page: jobs, partition grids, Launch backfill, Backfills."""
    session = _session(ctx, kubeconfig, context, namespace, all_namespaces_ok=True)
    g = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    return web.run(
        session.target,
        address=address,
        port=port,
        open_browser=open_,
        all_namespaces=all_namespaces or g.all_namespaces,
        out=session.out,
        err=session.err,
    )


def _print_error(message: str) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if console.is_terminal:
        console.print(f"[bold red]error:[/] {escape(message)}")
    else:
        console.print(f"error: {message}", markup=False)


def _parser_error(exc: Exception) -> int | None:
    """Handle an error of Typer's command-line parser (click's ClickException family).

    Typer vendors click in recent versions, so the classes are recognised by their shape
    (``exit_code`` and ``format_message``), not imported. Returns the exit code, or None when
    ``exc`` is not such an error.
    """
    code = getattr(exc, "exit_code", None)
    format_message = getattr(exc, "format_message", None)
    if not isinstance(code, int) or not callable(format_message):
        return None
    if type(exc).__name__ == "NoArgsIsHelpError":
        return 0  # the help was printed already
    _print_error(str(format_message()))
    if code == EXIT_USAGE:
        ctx = getattr(exc, "ctx", None)
        path = getattr(ctx, "command_path", None) or PROG
        print(f"See '{path} --help' for usage.", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kubectl backfill`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    A :class:`~.errors.CliError` prints ``error: <message>`` on one line (no traceback); a
    usage error prints kubectl's two lines (``error: ...`` and ``See '... --help'``) and
    returns 2; a declined or interrupted prompt returns 1; Ctrl-C returns 130.
    """
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name=PROG,
            standalone_mode=False,
        )
    except CliError as exc:
        _print_error(exc.message)
        return exc.exit_code
    except typer.Abort:
        print("\nAborted.", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        code = _parser_error(exc)
        if code is None:
            raise
        return code
    return result if isinstance(result, int) else 0
