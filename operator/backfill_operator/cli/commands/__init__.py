"""What each ``kubectl backfill`` command does, on top of planning, the client and rendering.

Every command function returns the exit code (:mod:`..errors`) or raises CliError. Modules,
in import order:

* :mod:`.session`: :class:`~.session.Session` (where to connect, the consoles, prompts);
* :mod:`.objects`: a Backfill's models, its PartitionedJob, the operator's verdict on both;
  a PartitionedJob's space, complete partitions, Jobs and Backfills;
* :mod:`.specs`: flags to a Backfill spec (``parse_keys``, ``build_spec``,
  ``check_queueing``);
* :mod:`.status`: ``status`` of a Backfill and following a Backfill to its end;
* :mod:`.submit`: the preview, ``plan`` and ``create``;
* :mod:`.job_status`: ``status`` of a PartitionedJob (``pj/NAME``), and which object a
  ``status`` argument names;
* :mod:`.missing`: ``missing``, and the Backfill that fills the missing partitions;
* :mod:`.manage`: ``list``, ``suspend``/``resume``, ``cancel``, ``retry-failed``;
* :mod:`.logs`: ``logs``.

Nothing here decides which partitions a Backfill selects or whether it is valid: that is
:func:`backfill_operator.planning.verdict.judge`, the operator's own code.
"""
