"""In-process evaluation with the pool's interface: for tests, benchmarks and debugging."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from disco_rules.cluster import reasons
from disco_rules.cluster.results import Failed


class LocalPool:
    """Runs every item in this process with one evaluator, in order."""

    def __init__(self, factory: Callable[[], Callable[[Any], Any]]) -> None:
        self.evaluator = factory()
        self.completed = 0
        self.failed = 0

    def map(self, items: Sequence[Any],
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Results in input order; an evaluator exception becomes `Failed` (its one-line
        reason, cluster/reasons.py), as on Ray.
        `on_result(index, result)` is called as each item's result is ready."""
        results: list[Any] = []
        for index, item in enumerate(items):
            try:
                results.append(self.evaluator(item))
                self.completed += 1
            except Exception as error:  # noqa: BLE001 - a failed item never stops the run
                if os.environ.get("DISCO_DEBUG"):
                    print(f"disco: a work item failed:\n{reasons.debug_traceback(error)}",
                          file=sys.stderr)
                results.append(Failed(reasons.one_line(error)))
                self.failed += 1
            if on_result is not None:
                on_result(index, results[-1])
        return results

    def shutdown(self) -> None:
        """Nothing to release; here for the pool interface."""
