"""``kubectl backfill``: the command line of backfill-operator (a kubectl plugin).

Modules, in import order:

* :mod:`.errors`: exit codes and :class:`~.errors.CliError` (one-line, user-facing);
* :mod:`.render`: pure rendering (progress, ETA, the partition grid, previews, the status
  view, tables, one-line messages);
* :mod:`.documents`: the ``-o json|yaml`` documents, the CLI's machine-readable contract;
* :mod:`.client`: the only module that talks to the Kubernetes API;
* :mod:`.commands`: what each command does (``session``, ``objects``, ``specs``, ``status``,
  ``submit``, ``manage``, ``logs``), on top of planning, the client and the renderers;
* :mod:`.app`: the command-line definition (Typer) and :func:`~.app.main`, the console script.

Previews and selections come from :func:`backfill_operator.planning.verdict.judge` and
:func:`backfill_operator.planning.ledger.preview`, the operator's own planning code, so what
``create`` and ``plan`` show is exactly what the operator will run.
"""
