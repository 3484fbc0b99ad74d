"""``kubectl backfill``: the command line of backfill-operator (a kubectl plugin).

Modules, in import order:

* :mod:`.errors`: exit codes and :class:`~.errors.CliError` (one-line, user-facing);
* :mod:`.render`: pure rendering and parsing (names, progress, ETA, the partition grid, tables);
* :mod:`.client`: the only module that talks to the Kubernetes API;
* :mod:`.ops`: what each command does, on top of the planner, the client and the renderers;
* :mod:`.app`: the command-line definition (Typer) and :func:`~.app.main`, the console script.

Previews use :func:`backfill_operator.planner.preview`, the operator's own planning code, so
what ``create`` and ``plan`` show is exactly what the operator will run.
"""
