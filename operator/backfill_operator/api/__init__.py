"""The API of group ``backfill.dev``, version ``v1alpha1``: what users and tools read and write.

* :mod:`.model`: the pydantic models, the single source of truth of the CRDs;
* :mod:`.reasons`: condition types, condition reasons and event reasons, each documented;
* :mod:`.labels`: the labels and annotations the operator puts on the Jobs it creates;
* :mod:`.crdgen`: the CRD YAML generated from the models (``make crds``).

Imports nothing else of the package: every other layer may import it.
"""
