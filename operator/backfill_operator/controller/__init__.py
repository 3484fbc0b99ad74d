"""The operator's I/O edge: the API client, the reconciler, its loops, kopf handlers, metrics.

* :mod:`.kube`: every Kubernetes call (:class:`~.kube.KubeApi`, :class:`~.kube.Kube`);
* :mod:`.builders`: the Job and Event manifests (pure, beside the client that sends them);
* :mod:`.metrics`: the Prometheus metrics;
* :mod:`.reconciler`: one pass of a Backfill or a PartitionedJob, in crash-safe order;
* :mod:`.runtime`: one worker loop per Backfill; :mod:`.handlers`: the kopf handlers.

Decisions are made in :mod:`backfill_operator.planning`; nothing here decides what to run.
"""
