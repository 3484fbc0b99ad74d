"""Fixtures of the operator process (see tests/operator_support.py)."""

from operator_support import crds_installed, operator, operator_process

__all__ = ["crds_installed", "operator", "operator_process"]
