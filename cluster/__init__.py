"""Running work on Ray: evaluator actors, ordered maps with retries, placement on GPU nodes.

Names load on first use, so `disco_rules.cluster.results` (and `Failed`) import without Ray.
"""

from __future__ import annotations

if __name__ != "disco_rules.cluster":  # imported as a top-level `cluster` from the repository's root
    raise ImportError(f"import disco_rules.cluster, not {__name__}: the repository's folders are "
                      "the subpackages of disco_rules, and a second copy of their classes "
                      "would not be the same classes")

import importlib
from typing import Any

_HOMES = {"EvaluatorActor": "pool", "EvaluatorPool": "pool", "PoolConfig": "pool",
          "start_ray": "pool", "Failed": "results", "TimedOut": "results"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """The named export, imported from its module on first access."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
