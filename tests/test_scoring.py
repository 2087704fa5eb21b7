"""A task score's standard error over seeds, against closed forms."""

import math
from types import SimpleNamespace

import numpy as np

from disco_rules.cluster.results import Failed
from disco_rules.discovery.inner.rl_train import RLScores
from disco_rules.discovery.inner.train import CURVE_POINTS, TrainResult
from disco_rules.discovery.scoring import task_score
from disco_rules.discovery.selection import standard_error
from disco_rules.discovery.store import BaselineRecord

OPTIMIZER_TASK = SimpleNamespace(key="opt", kind="optimizer")
RL_TASK = SimpleNamespace(key="rl", kind="rl")


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
                                                                 loss=2.0), [0.1, 1.0])
    assert score.reason is None and score.row.lr == 0.1
    assert abs(score.value) < 1e-6
    # sample variance of (log 2, 0, -log 2) is log(2)^2, so the SE is log 2 / sqrt(3)
    assert math.isclose(score.se, math.log(2) / math.sqrt(3), rel_tol=1e-5)


def test_rl_score_standard_error_is_over_normalised_returns():
    final = np.array([100.0, 200.0, 300.0, 400.0])
    result = RLScores(curve=np.full((1, 4, 5), 50.0), final_return=final[None],
                      penalty=np.zeros((1, 4)))
    baseline = BaselineRecord(task="rl", score=250.0, curve=np.array([50.0, 150.0, 250.0]))
    score = task_score(result, 0, RL_TASK, baseline, [2.5e-3])
    per_seed = (final - 50.0) / 200.0  # 0 where the agent ends as it began, 1 at the baseline
    assert math.isclose(score.value, per_seed.mean())
    assert math.isclose(score.se, per_seed.std(ddof=1) / 2.0)


def test_no_standard_error_from_fewer_than_three_seeds_or_a_failure():
    one_seed = task_score(optimizer_result([[1.0]]), 0, OPTIMIZER_TASK,
                          BaselineRecord(task="opt", score=0.0, loss=1.0), [0.1])
    assert one_seed.value == 0.0 and math.isnan(one_seed.se)
    two_seeds = task_score(optimizer_result([[1.0, 4.0]]), 0, OPTIMIZER_TASK,
                           BaselineRecord(task="opt", score=0.0, loss=2.0), [0.1])
    assert abs(two_seeds.value) < 1e-6 and math.isnan(two_seeds.se)  # 2 results: no ± shown
    failed = task_score(Failed("boom"), 0, OPTIMIZER_TASK,
                        BaselineRecord(task="opt", score=0.0, loss=1.0), [0.1])
    assert failed.value == -math.inf and math.isnan(failed.se)
    assert math.isnan(standard_error(np.array([3.0])))
