"""The driver's Prometheus endpoint: values after a generation, live pool counters, loopback
binding, and a real in-process search scraped while it runs."""

import math
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.cli import CliError, build_parser
from disco_rules.discovery.cli.run import serve_metrics
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.metrics import SearchMetrics
from disco_rules.api import create_run
from disco_rules.discovery.search.engine import GenerationReport, make_engine
from disco_rules.dsl.parser import parse

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"

TINY_SEARCH = """
seed = 1
generations = 2
[population]
size = 4
tournament = 2
children = 3
max_statements = 6
[tasks]
seeds = 1
lr_grid = [0.1]
train = [{ family = "quadratic", dim = 2, horizon = 10 }]
heldout = [{ family = "quadratic", dim = 3, horizon = 10 }]
[validation]
every = 100
top = 1
[cluster]
batch_size = 4
"""


def report(generation=3, **changes) -> GenerationReport:
    values = dict(generation=generation, candidates=10, evaluated=7, cache_hits=3, screened=1,
                  failed=2, best=0.5, median=-0.25, seconds=2.0, total_evaluated=7,
                  total_cache_hits=3)
    return GenerationReport(**{**values, **changes})


def scrape(server, host="127.0.0.1") -> dict[str, float]:
    """Every sample on the endpoint, keyed by name and sorted labels: `name{a="x"}`."""
    text = urllib.request.urlopen(f"http://{host}:{server.port}/metrics", timeout=5).read()
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


@pytest.fixture
def served():
    servers = []

    def serve(metrics: SearchMetrics, **kwargs):
        servers.append(metrics.serve(0, **kwargs))
        return servers[-1]

    yield serve
    for server in servers:
        server.shutdown()


class FakePool:
    """The counters of an EvaluatorPool, without Ray."""

    retries, actor_restarts, completed, failed, in_flight = 2, 1, 5, 1, 4


def test_a_generation_report_shows_up_on_the_endpoint(served):
    metrics = SearchMetrics()
    server = served(metrics)
    metrics.observe(report(median=-math.inf))
    values = scrape(server)
    assert values["disco_evaluations_total"] == 7
    assert values["disco_candidates_total"] == 10
    assert values["disco_cache_hits_total"] == 3
    assert values["disco_screened_total"] == 1
    assert values["disco_failed_candidates_total"] == 2
    assert values["disco_generation"] == 3
    assert values["disco_best_fitness"] == 0.5
    assert values["disco_median_fitness"] == -math.inf
    assert values["disco_evaluations_per_second"] == 3.5
    assert values["disco_generation_seconds_count"] == 1
    assert values["disco_generation_seconds_sum"] == 2.0
    assert values['disco_generation_seconds_bucket{le="2.0"}'] == 1
    assert values['disco_generation_seconds_bucket{le="1.0"}'] == 0


def test_counters_accumulate_and_gauges_hold_the_last_generation(served):
    metrics = SearchMetrics()
    server = served(metrics)
    metrics.observe(report(generation=0, evaluated=4, seconds=1.0))
    metrics.observe(report(generation=1, evaluated=6, best=0.9, seconds=0.0))
    values = scrape(server)
    assert values["disco_evaluations_total"] == 10
    assert values["disco_generation"] == 1
    assert values["disco_best_fitness"] == 0.9
    assert values["disco_evaluations_per_second"] == 0.0  # a zero-length generation: no rate
    assert values["disco_generation_seconds_count"] == 2


def test_pool_counters_are_read_when_scraped(served):
    pool = FakePool()
    metrics = SearchMetrics(pool)
    server = served(metrics)
    values = scrape(server)  # before any generation has finished
    assert values["disco_pool_retries_total"] == 2
    assert values["disco_actor_restarts_total"] == 1
    assert values["disco_pool_items_completed_total"] == 5
    assert values["disco_pool_items_failed_total"] == 1
    assert values["disco_pool_in_flight"] == 4
    pool.in_flight, pool.retries = 0, 3
    values = scrape(server)
    assert values["disco_pool_in_flight"] == 0
    assert values["disco_pool_retries_total"] == 3


def test_a_local_pool_without_retry_counters_reads_as_zero(served):
    pool = LocalPool(lambda: (lambda item: item))
    pool.map([1, 2, 3])
    metrics = SearchMetrics()
    server = served(metrics)
    metrics.observe(report(), pool)
    values = scrape(server)
    assert values["disco_pool_items_completed_total"] == 3
    assert values["disco_pool_retries_total"] == 0
    assert values["disco_actor_restarts_total"] == 0
    assert values["disco_pool_in_flight"] == 0


def test_regret_is_labelled_by_level_family(served):
    metrics = SearchMetrics()
    server = served(metrics)
    metrics.observe(report(regret=(("quadratic", 0.25), ("rnn", 1.5))))
    metrics.observe(report(generation=4, regret=(("quadratic", 0.125),)))
    values = scrape(server)
    assert values['disco_regret{family="quadratic"}'] == 0.125
    assert values['disco_regret{family="rnn"}'] == 1.5


def test_each_instance_has_its_own_registry(served):
    first, second = SearchMetrics(), SearchMetrics()
    first.observe(report(evaluated=1))
    second.observe(report(evaluated=5))
    assert scrape(served(first))["disco_evaluations_total"] == 1
    assert scrape(served(second))["disco_evaluations_total"] == 5


def test_the_server_binds_to_loopback_by_default_and_shuts_down():
    metrics = SearchMetrics()
    server = metrics.serve(0)
    assert server.host == "127.0.0.1"
    assert server.server.socket.getsockname()[0] == "127.0.0.1"
    assert "disco_generation" in scrape(server)
    server.shutdown()
    with pytest.raises(urllib.error.URLError):
        scrape(server)


def test_the_bind_address_is_configurable(served):
    server = served(SearchMetrics(), host="127.0.0.2")  # another loopback address (Linux)
    assert server.server.socket.getsockname()[0] == "127.0.0.2"
    assert "disco_generation" in scrape(server, host="127.0.0.2")
    with pytest.raises(urllib.error.URLError):
        scrape(server, host="127.0.0.1")


def test_cli_metrics_options_default_to_no_server_on_loopback():
    args = build_parser().parse_args(["launch", "search.toml"])
    assert args.metrics_port is None and args.metrics_host == "127.0.0.1"
    assert serve_metrics(args, pool=None) == (None, None)
    args = build_parser().parse_args(["resume", "runs/x", "--metrics-port", "9400",
                                      "--metrics-host", "0.0.0.0"])
    assert (args.metrics_port, args.metrics_host) == (9400, "0.0.0.0")


def test_cli_reports_a_busy_metrics_port_as_one_line(served):
    busy = served(SearchMetrics())
    args = build_parser().parse_args(["launch", "search.toml", "--metrics-port", str(busy.port)])
    with pytest.raises(CliError, match="--metrics-port: cannot listen on 127.0.0.1"):
        serve_metrics(args, pool=None)


@pytest.mark.slow  # a whole 2-generation search
def test_a_search_with_observe_as_on_generation_is_scraped_during_and_after(tmp_path, served):
    config = parse_config(TINY_SEARCH)
    warm = [parse((EXAMPLES / f"{name}.py").read_text()) for name in ("sgd", "momentum")]
    store = create_run(tmp_path / "run", "test", TINY_SEARCH, warm)
    pool = LocalPool(lambda: Evaluator(config.population.max_statements))
    metrics = SearchMetrics(pool)
    server = served(metrics)
    during = []

    def on_generation(generation_report: GenerationReport) -> None:
        metrics.observe(generation_report, pool)
        during.append((generation_report, scrape(server)))

    search = make_engine(config, store, pool, on_generation=on_generation)
    search.restore()
    search.run(2)
    store.close()

    assert [r.generation for r, _ in during] == [0, 1]
    for generation_report, values in during:
        assert values["disco_generation"] == generation_report.generation
        assert values["disco_evaluations_total"] == generation_report.total_evaluated
        assert values["disco_cache_hits_total"] == generation_report.total_cache_hits
        assert values["disco_best_fitness"] == pytest.approx(generation_report.best)
    after = scrape(server)
    assert after["disco_generation_seconds_count"] == 2
    assert after["disco_candidates_total"] == sum(r.candidates for r, _ in during)
    assert after["disco_pool_items_completed_total"] == pool.completed > 0
