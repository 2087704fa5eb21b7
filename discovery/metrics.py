"""The search driver's Prometheus metrics: what each generation did, and the pool's counters.

Everything lives in a `SearchMetrics` object with its own registry (never prometheus_client's
global one), served over HTTP on 127.0.0.1 unless told otherwise. The evaluator actors report
their own figures through Ray's metrics (see `cluster.pool`), which a cluster's Prometheus
scrapes from every node.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from disco_rules.discovery.search import GenerationReport

GENERATION_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, math.inf)


class _PoolCollector(Collector):
    """The pool's counters, read when Prometheus scrapes, so they move during a generation."""

    def __init__(self) -> None:
        self.pool: Any = None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        def read(name: str) -> float:
            return float(getattr(self.pool, name, 0) or 0)

        yield CounterMetricFamily("disco_pool_retries", "Work items put back after their actor "
                                  "or node was lost.", value=read("retries"))
        yield CounterMetricFamily("disco_actor_restarts", "Evaluator actors replaced after "
                                  "being lost.", value=read("actor_restarts"))
        yield CounterMetricFamily("disco_pool_items_completed", "Work items that returned a "
                                  "result.", value=read("completed"))
        yield CounterMetricFamily("disco_pool_items_failed", "Work items that ended as Failed "
                                  "(evaluator error, or lost past the retries).",
                                  value=read("failed"))
        yield GaugeMetricFamily("disco_pool_in_flight", "Work items submitted to actors and not "
                                "yet collected.", value=read("in_flight"))


class SearchMetrics:
    """The driver's metrics, in their own registry; `observe` updates them once per generation."""

    def __init__(self, pool: Any = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.evaluations = Counter("disco_evaluations", "Distinct candidates trained (cache "
                                   "hits excluded).", registry=registry)
        self.candidates = Counter("disco_candidates", "Candidates proposed, cached or not.",
                                  registry=registry)
        self.cache_hits = Counter("disco_cache_hits", "Candidates that reused the score of an "
                                  "equivalent program.", registry=registry)
        self.screened = Counter("disco_screened", "Candidates stopped by the cheap screen.",
                                registry=registry)
        self.failed = Counter("disco_failed_candidates", "Candidates scored -inf (NaN, "
                              "divergence, or a failed work item).", registry=registry)
        self.generation = Gauge("disco_generation", "The last finished generation.",
                                registry=registry)
        self.best = Gauge("disco_best_fitness", "Best training fitness in the population.",
                          registry=registry)
        self.median = Gauge("disco_median_fitness", "Median training fitness in the population.",
                            registry=registry)
        self.rate = Gauge("disco_evaluations_per_second", "Distinct candidates trained per "
                          "second in the last generation.", registry=registry)
        self.generation_seconds = Histogram("disco_generation_seconds", "Wall time of a "
                                            "generation.", buckets=GENERATION_SECONDS_BUCKETS,
                                            registry=registry)
        self.regret = Gauge("disco_regret", "Regret (baseline score - candidate score) by level "
                            "family, as the scheduler last measured it.", ["family"],
                            registry=registry)
        self._pool = _PoolCollector()
        self._pool.pool = pool
        registry.register(self._pool)

    def observe(self, report: GenerationReport, pool: Any = None) -> None:
        """Take in one generation's report; `pool` (if given) is the one whose counters to show."""
        if pool is not None:
            self._pool.pool = pool
        self.evaluations.inc(report.evaluated)
        self.candidates.inc(report.candidates)
        self.cache_hits.inc(report.cache_hits)
        self.screened.inc(report.screened)
        self.failed.inc(report.failed)
        self.generation.set(report.generation)
        self.best.set(report.best)
        self.median.set(report.median)
        self.rate.set(report.evaluated / report.seconds if report.seconds > 0 else 0.0)
        self.generation_seconds.observe(report.seconds)
        for family, regret in report.regret:
            self.set_regret(family, regret)

    def set_regret(self, family: str, regret: float) -> None:
        """Record the scheduler's current regret on one level family."""
        self.regret.labels(family=family).set(regret)

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve /metrics on host:port (port 0: any free port); loopback unless told otherwise."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


@dataclass
class MetricsServer:
    """A running metrics endpoint; `shutdown` stops it and frees the port."""

    server: Any
    thread: threading.Thread

    @property
    def host(self) -> str:
        return self.server.server_address[0]

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
