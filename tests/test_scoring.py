"""A task score and its standard error over seeds, against closed forms; how chosen programs
are batched for scoring."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.results import Failed
from disco_rules.discovery.config import TasksConfig, parse_config
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.inner.rl_train import RLScores
from disco_rules.discovery.inner.train import CURVE_POINTS, TrainResult
from disco_rules.discovery.scoring import chosen_size, score_programs, task_score
from disco_rules.discovery.selection import standard_error
from disco_rules.discovery.store import BaselineRecord
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

OPTIMIZER_TASK = SimpleNamespace(key="opt", kind="optimizer")
RL_TASK = SimpleNamespace(key="rl", kind="rl")
PROGRAMS = Path(__file__).parent.parent / "dsl" / "programs"


def optimizer_result(final_loss: list[list[float]]) -> TrainResult:
    """A one-candidate work result with these final losses [lr, seed] and flat curves."""
    final = np.asarray(final_loss, np.float32)
    return TrainResult(final_loss=final[None],
                       curve=np.repeat(final[None, ..., None], CURVE_POINTS, axis=-1),
                       diverged=np.zeros((1,) + final.shape, bool))


def test_optimizer_score_and_its_standard_error_at_the_best_lr():
    # lr 0 is best (mean log loss log 2); per seed, log(2 / loss) = log 2, 0, -log 2
    result = optimizer_result([[1.0, 2.0, 4.0], [10.0, 10.0, 10.0]])
    score = task_score(result, 0, OPTIMIZER_TASK, BaselineRecord(task="opt", score=0.0,
                                                                 loss=2.0),
                       TasksConfig(lr_grid=(0.1, 1.0)))
    assert score.reason is None and score.row.lr == 0.1
    assert abs(score.value) < 1e-6
    # sample variance of (log 2, 0, -log 2) is log(2)^2, so the SE is log 2 / sqrt(3)
    assert math.isclose(score.se, math.log(2) / math.sqrt(3), rel_tol=1e-5)


def test_a_candidate_tuned_over_schedules_records_its_best_lr_and_schedule():
    # grid points are lr-major: (0.01, constant), (0.01, cosine), (0.1, constant), (0.1, cosine)
    tasks = TasksConfig(lr_grid=(0.01, 0.1), schedule=("constant", "cosine"))
    for best, lr, schedule in [(1, 0.01, "cosine"), (2, 0.1, "constant"), (3, 0.1, "cosine")]:
        final = [[4.0, 4.0]] * 4
        final[best] = [1.0, 1.0]
        score = task_score(optimizer_result(final), 0, OPTIMIZER_TASK,
                           BaselineRecord(task="opt", score=0.0, loss=2.0), tasks)
        assert (score.row.lr, score.row.schedule) == (lr, schedule)
        assert math.isclose(score.value, math.log(2.0), rel_tol=1e-6)


def test_rl_score_standard_error_is_over_normalised_returns():
    final = np.array([100.0, 200.0, 300.0, 400.0])
    result = RLScores(curve=np.full((1, 4, 5), 50.0), final_return=final[None],
                      penalty=np.zeros((1, 4)))
    baseline = BaselineRecord(task="rl", score=250.0, curve=np.array([50.0, 150.0, 250.0]))
    score = task_score(result, 0, RL_TASK, baseline, TasksConfig(lr_grid=(2.5e-3,)))
    per_seed = (final - 50.0) / 200.0  # 0 where the agent ends as it began, 1 at the baseline
    assert math.isclose(score.value, per_seed.mean())
    assert math.isclose(score.se, per_seed.std(ddof=1) / 2.0)


def test_no_standard_error_from_fewer_than_three_seeds_or_a_failure():
    one_seed = task_score(optimizer_result([[1.0]]), 0, OPTIMIZER_TASK,
                          BaselineRecord(task="opt", score=0.0, loss=1.0), TasksConfig(lr_grid=(0.1,)))
    assert one_seed.value == 0.0 and math.isnan(one_seed.se)
    two_seeds = task_score(optimizer_result([[1.0, 4.0]]), 0, OPTIMIZER_TASK,
                           BaselineRecord(task="opt", score=0.0, loss=2.0), TasksConfig(lr_grid=(0.1,)))
    assert abs(two_seeds.value) < 1e-6 and math.isnan(two_seeds.se)  # 2 results: no ± shown
    failed = task_score(Failed("boom"), 0, OPTIMIZER_TASK,
                        BaselineRecord(task="opt", score=0.0, loss=1.0), TasksConfig(lr_grid=(0.1,)))
    assert failed.value == -math.inf and math.isnan(failed.se)
    assert math.isnan(standard_error(np.array([3.0])))


class CountingPool(LocalPool):
    """An in-process pool that records how many programs each work item carries."""

    def __init__(self) -> None:
        super().__init__(lambda: Evaluator(16))
        self.sizes: list[int] = []

    def map(self, items, on_result=None):
        self.sizes += [int(item.programs.ops.shape[0]) for item in items]
        return super().map(items, on_result)


def test_chosen_programs_train_without_a_batchs_padding_and_score_the_same():
    config = parse_config("[tasks]\nlr_grid = [0.01, 0.1]\n"
                          "[validation]\ntop = 3\n[cluster]\nbatch_size = 8\n")
    task = Task.make("quadratic", dim=4, horizon=20)
    programs = [parse((PROGRAMS / f"{name}.py").read_text())
                for name in ("sgd", "momentum", "adam")]
    baselines = {task.key: BaselineRecord(task=task.key, score=0.0, loss=1.0)}
    pool = CountingPool()
    encoding = Encoding(max_statements=16)
    chosen = score_programs(pool, config, encoding, programs, [task], baselines,
                            chosen_size(config))
    batched = score_programs(pool, config, encoding, programs, [task], baselines)
    assert pool.sizes == [3, 8]  # a validation round's top, then a training batch
    assert [row[0].value for row in chosen] == [row[0].value for row in batched]
    assert len({row[0].value for row in chosen}) == 3  # three different rules, three scores
