"""PPO with a pluggable objective: the clip drift is exactly PPO, a drift program through the
interpreter trains exactly as the same drift in JAX, DPO is the paper's formula, PPO learns
CartPole, a run is a function of its key, and a traced learning rate trains as a fixed one
(so the baseline compiles one trainer for its lr grid)."""

import dataclasses
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.discovery.config import PPOConfig
from disco_rules.discovery.inner import rl_train
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.inner.ppo import lpo_objective, make_train, ppo_clip_drift, program_drift
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER

PROGRAMS = Path(__file__).parent.parent / "dsl" / "programs"
DPO = parse((PROGRAMS / "dpo.py").read_text())
PPO_CLIP = parse((PROGRAMS / "ppo_clip.py").read_text())
ENCODING = Encoding(slot=OBJECTIVE, max_statements=16)
EPS = 0.2
SHORT = PPOConfig(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 8)
KEYS = jax.random.split(jax.random.PRNGKey(0), 2)
CARTPOLE = gymnax.make("CartPole-v1")[1]


def direct_ppo_objective(args, ratio, advantage, progress):
    """PPO's clipped surrogate as usually written."""
    return jnp.minimum(ratio * advantage, jnp.clip(ratio, 1.0 - EPS, 1.0 + EPS) * advantage)


def short_train(objective, config=SHORT):
    return jax.jit(jax.vmap(make_train(config, "CartPole-v1", objective), in_axes=(None, None, 0)))


CLIP_TRAIN = short_train(lpo_objective(ppo_clip_drift(EPS)))


def assert_same_run(ours, reference, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(ours.curve, reference.curve, rtol=rtol, atol=atol)
    for a, b in zip(jax.tree.leaves(ours.params), jax.tree.leaves(reference.params)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def dpo_formula(r, a, alpha=2.0, beta=0.6):
    up = (r - 1.0) * a
    down = np.log(r) * a
    return np.where(a >= 0, np.maximum(up - alpha * np.tanh(up / alpha), 0.0),
                    np.maximum(down - beta * np.tanh(down / beta), 0.0))


def test_clip_drift_objective_and_its_gradient_equal_ppos_on_random_batches():
    k_r, k_a = jax.random.split(jax.random.PRNGKey(1))
    ratio = jnp.exp(0.3 * jax.random.normal(k_r, (4096,)))
    advantage = jax.random.normal(k_a, (4096,))
    lpo = lpo_objective(ppo_clip_drift(EPS))
    for objective in (lpo, direct_ppo_objective):
        assert objective(None, ratio, advantage, 0.5).shape == ratio.shape
    np.testing.assert_allclose(lpo(None, ratio, advantage, 0.5),
                               direct_ppo_objective(None, ratio, advantage, 0.5), atol=1e-6)
    grad = jax.grad(lambda f, r: f(None, r, advantage, 0.5).mean(), argnums=1)
    np.testing.assert_allclose(grad(lpo, ratio), grad(direct_ppo_objective, ratio), atol=1e-9)


@pytest.mark.slow
def test_clip_drift_trains_exactly_as_ppos_clipped_objective():
    assert_same_run(CLIP_TRAIN(None, CARTPOLE, KEYS), short_train(direct_ppo_objective)(None, CARTPOLE, KEYS))


@pytest.mark.slow
def test_ppo_clip_program_through_the_interpreter_trains_as_the_clip_drift():
    OBJECTIVE.check(PPO_CLIP)
    train = short_train(lpo_objective(program_drift(ENCODING)))
    assert_same_run(train(ENCODING.encode(PPO_CLIP), CARTPOLE, KEYS), CLIP_TRAIN(None, CARTPOLE, KEYS))


@pytest.mark.slow
def test_programs_and_seeds_vmapped_together_train_as_each_alone():
    train = make_train(SHORT, "CartPole-v1", lpo_objective(program_drift(ENCODING)))
    population = ENCODING.encode_population([PPO_CLIP, DPO])
    together = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, None, 0)),
                                     in_axes=(0, None, None)))(population, CARTPOLE, KEYS)
    assert together.curve.shape == (2, 2, SHORT.num_updates)
    assert np.all(np.isfinite(together.curve))
    assert_same_run(jax.tree.map(lambda x: x[0], together), CLIP_TRAIN(None, CARTPOLE, KEYS))
    assert not np.array_equal(together.curve[0], together.curve[1])


def test_dpo_program_is_the_dpo_formula_nonnegative_and_zero_at_ratio_one():
    OBJECTIVE.check(DPO)
    r, a = np.meshgrid(np.linspace(0.05, 3.0, 60), np.linspace(-4.0, 4.0, 41))
    (drift,) = evaluate(DPO, {"ratio": r, "advantage": a, "progress": 0.3})
    np.testing.assert_allclose(drift, dpo_formula(r, a), rtol=1e-6, atol=1e-9)
    assert np.all(drift >= 0)
    (at_one,) = evaluate(DPO, {"ratio": np.ones(41), "advantage": a[:, 0], "progress": 0.3})
    np.testing.assert_array_equal(at_one, 0.0)


def test_program_drift_needs_the_objective_slot():
    with pytest.raises(ValueError, match="objective slot"):
        program_drift(Encoding(slot=OPTIMIZER))


@pytest.mark.slow
def test_ppo_learns_cartpole():
    train = make_train(PPOConfig(), "CartPole-v1", lpo_objective(ppo_clip_drift(EPS)))
    result = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))(None, CARTPOLE, KEYS)
    assert np.all(result.curve[:, 0] < 40)  # a random policy's return is about 20
    assert np.all(result.final_return > 100), result.final_return


@pytest.mark.slow  # trains PPO agents
def test_a_run_is_a_function_of_its_key():
    first, again = CLIP_TRAIN(None, CARTPOLE, KEYS), CLIP_TRAIN(None, CARTPOLE, KEYS)
    assert_same_run(first, again, rtol=0, atol=0)
    assert not np.array_equal(first.curve[0], first.curve[1])


@pytest.mark.slow
def test_minatar_environments_train_from_their_name():
    config = PPOConfig(num_envs=2, num_steps=16, total_timesteps=2 * 16 * 2)
    train = jax.jit(make_train(config, "Breakout-MinAtar", lpo_objective(ppo_clip_drift(EPS))))
    result = train(None, gymnax.make("Breakout-MinAtar")[1], KEYS[0])
    assert result.curve.shape == (2,)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))


@pytest.mark.slow
def test_env_params_are_traced_levels_vmap_and_train_as_each_alone():
    heavy = CARTPOLE.replace(gravity=19.6, length=1.0, polemass_length=0.1)
    levels = jax.tree.map(lambda a, b: jnp.stack([jnp.asarray(a), jnp.asarray(b)]),
                          CARTPOLE, heavy)
    train = make_train(SHORT, "CartPole-v1", lpo_objective(ppo_clip_drift(EPS)))
    both = jax.jit(jax.vmap(train, in_axes=(None, 0, None)))(None, levels, KEYS[0])
    alone = jax.jit(train)(None, heavy, KEYS[0])
    np.testing.assert_allclose(both.curve[1], alone.curve, rtol=1e-5, atol=1e-5)
    assert not np.allclose(both.curve[0], both.curve[1])


@pytest.mark.slow
@pytest.mark.parametrize("lr", [1e-3, 2.5e-2])
def test_a_traced_learning_rate_trains_as_the_rate_fixed_in_the_config(lr):
    fixed = short_train(lpo_objective(ppo_clip_drift(EPS)),
                        dataclasses.replace(SHORT, lr=lr))(None, CARTPOLE, KEYS)
    train = make_train(SHORT, "CartPole-v1", lpo_objective(ppo_clip_drift(EPS)))
    traced = jax.jit(jax.vmap(train, in_axes=(None, None, 0, None)))(
        None, CARTPOLE, KEYS, jnp.float32(lr))
    assert_same_run(traced, fixed)


@pytest.mark.slow
def test_the_ppo_baseline_compiles_one_trainer_for_its_whole_lr_grid(monkeypatch):
    monkeypatch.setattr(rl_train, "_COMPILED", {})
    task = Task.make("cartpole", total_timesteps=SHORT.total_timesteps)
    lrs = (1e-3, 3e-3, 1e-2)
    best_lr, final, curve = rl_train.rl_baseline(task, SHORT, lrs, KEYS)
    (run,) = rl_train._COMPILED.values()
    assert run._cache_size() == 1
    assert best_lr in lrs and np.isfinite(final) and curve.shape == (SHORT.num_updates,)
    # the grid's best rate, trained alone with the rate fixed in the config, returns as much
    alone = short_train(lpo_objective(ppo_clip_drift(SHORT.clip_eps)),
                        dataclasses.replace(SHORT, lr=best_lr))(None, task.build().params, KEYS)
    np.testing.assert_allclose(np.mean(alone.final_return), final, rtol=1e-5)
