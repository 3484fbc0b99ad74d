"""``kubectl backfill``: the command line of backfill-operator (a kubectl plugin).

Modules, in import order:

* :mod:`.errors`: exit codes and :class:`~.errors.CliError` (one-line, user-facing);
* :mod:`.coverage`: pure index-set arithmetic over a PartitionedJob's partitions (ledger
  outcomes, active Jobs, the missing ones as ranges of keys, the Backfill filling them);
* :mod:`.render`: pure rendering (progress, ETA, the partition grid, previews, the status
  views of a Backfill and of a PartitionedJob, ``missing``, tables, one-line messages);
* :mod:`.documents`: the ``-o json|yaml`` documents, the CLI's machine-readable contract;
* :mod:`.client`: the only module that talks to the Kubernetes API;
* :mod:`.commands`: what each command does (``session``, ``objects``, ``specs``, ``status``,
  ``submit``, ``job_status``, ``missing``, ``manage``, ``logs``), on top of planning, the
  client and the renderers;
* :mod:`.app`: the command-line definition (Typer) and :func:`~.app.main`, the console script.

Previews and selections come from :func:`backfill_operator.planning.verdict.judge` and
:func:`backfill_operator.planning.ledger.preview`, the operator's own planning code, so what
``create`` and ``plan`` show is exactly what the operator will run.
"""
