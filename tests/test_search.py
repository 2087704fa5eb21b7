"""The search, end to end in-process: dedupe, NaN candidates, resume determinism, and
evolution that finds a known program."""

import math
from pathlib import Path

import numpy as np
import pytest

from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.results import Failed
from disco_rules.discovery.config import ConfigError, parse_config
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem
from disco_rules.api import create_run
from disco_rules.discovery.search.engine import make_engine
from disco_rules.discovery.store import RunStore
from disco_rules.discovery.tasks.family import FAMILIES
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.mutate import MutationConfig
from disco_rules.dsl.parser import parse
from disco_rules.populations.evolution import Member, RegularizedEvolution, EvolutionState
from tests.configs import config_variant

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"

CONFIG = """
seed = 7
generations = 4
[population]
size = 8
tournament = 3
children = 6
max_statements = 12
[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 4, horizon = 12 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 12, condition_number = 10.0 }]
[validation]
every = 2
top = 2
[cluster]
batch_size = 8
"""


class CountingPool(LocalPool):
    """In-process pool that counts the programs it was asked to train."""

    def __init__(self, factory, fail_on_call=None):
        super().__init__(factory)
        self.programs_trained = 0
        self.calls = 0
        self.fail_on_call = fail_on_call

    def map(self, items):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated crash in the middle of a generation")
        self.programs_trained += sum(1 for i in items if isinstance(i, ProgramsItem))
        return super().map(items)


def programs(*names):
    return [parse((EXAMPLES / f"{name}.py").read_text()) for name in names]


def make_search(run_dir, warm_start, config_text=CONFIG, pool=None):
    config = parse_config(config_text)
    store = RunStore.open(run_dir) if (Path(run_dir) / "config.toml").exists() \
        else create_run(run_dir, "test", config_text, warm_start)
    pool = pool or CountingPool(lambda: Evaluator(config.population.max_statements))
    search = make_engine(config, store, pool)
    search.restore()
    return search, store, pool


def archive_rows(store):
    return [store.query("SELECT * FROM candidates ORDER BY id"),
            store.query("SELECT candidate_id, task, score, loss, lr FROM scores "
                        "ORDER BY candidate_id, task"),
            store.query("SELECT * FROM validation ORDER BY candidate_id, task")]


def test_equivalent_candidates_reuse_a_score_instead_of_being_trained(tmp_path):
    sgd = programs("sgd")[0]
    same_function = parse("def sgd_too(w, g, lr):\n    a = g * lr\n    b = a + 0.0\n"
                          "    return b\n")
    search, store, pool = make_search(tmp_path / "run", [sgd, same_function])
    report = search.step()
    first, second = store.candidate(0), store.candidate(1)
    assert first.status == "ok" and second.status == "cached"
    assert second.fitness == first.fitness
    assert "same function as candidate 0" in second.reason
    assert report.cache_hits >= 1
    assert report.evaluated == report.candidates - report.cache_hits
    assert store.scores_of(1) == []  # never trained


def test_a_nan_producing_candidate_gets_the_worst_fitness_and_a_reason(tmp_path):
    # finite on the stability screen's battery, so it is trained: gradient ascent, 100 times
    exploding = parse("def bad(w, g, lr):\n    u = (-100.0) * g\n    return u\n")
    # NaN on every input: the stability screen stops it before training
    nan_rule = parse("def nan(w, g, lr):\n    u = log(-1.0 - abs(g))\n    return u\n")
    search, store, _ = make_search(tmp_path / "run", [programs("sgd")[0], exploding, nan_rule])
    search.step()
    bad = store.candidate(1)
    assert bad.fitness == -math.inf
    assert bad.status in ("nan", "diverged") and bad.reason
    nan = store.candidate(2)
    assert nan.fitness == -math.inf
    assert nan.status == "screened" and nan.reason.startswith("unstable: ")
    # never trained on the training tasks (generation 0 meta-validates every warm start)
    train = {task.key for task in search.tasks.train}
    assert not {row.task for row in store.scores_of(2)} & train
    assert math.isfinite(store.candidate(0).fitness)


def test_a_failed_work_item_marks_its_candidates_failed_and_the_run_goes_on(tmp_path):
    class Flaky(CountingPool):
        def map(self, items):
            return [Failed("RuntimeError: node lost") if isinstance(i, ProgramsItem) else r
                    for i, r in zip(items, super().map(items))]

    config = parse_config(CONFIG)
    pool = Flaky(lambda: Evaluator(config.population.max_statements))
    search, store, _ = make_search(tmp_path / "run", programs("sgd"), pool=pool)
    search.step()
    assert store.candidate(0).status == "failed"
    assert "node lost" in store.candidate(0).reason
    assert search.step().generation == 1


def test_a_resumed_run_ends_with_the_same_archive_as_an_uninterrupted_one(tmp_path):
    warm = programs("sgd", "momentum")
    search, straight, _ = make_search(tmp_path / "straight", warm)
    search.run(4)

    config = parse_config(CONFIG)
    crashing = CountingPool(lambda: Evaluator(config.population.max_statements), fail_on_call=5)
    search, interrupted, _ = make_search(tmp_path / "interrupted", warm, pool=crashing)
    with pytest.raises(KeyboardInterrupt):
        search.run(4)
    interrupted.close()
    search, resumed, _ = make_search(tmp_path / "interrupted", warm)
    assert 0 < search.generation < 4
    search.run(4)
    assert archive_rows(resumed) == archive_rows(straight)
    assert resumed.top(3, by="validation") == straight.top(3, by="validation")


def test_resuming_where_a_familys_defaults_changed_is_refused(tmp_path, monkeypatch):
    """The run stores its config, not the defaults it relied on: a resume under code whose
    defaults build other tasks says so instead of mixing the two."""
    search, store, _ = make_search(tmp_path / "run", programs("sgd"))
    search.step()
    store.close()
    monkeypatch.setitem(FAMILIES.get("quadratic").defaults, "condition_number", 50.0)
    with RunStore.open(tmp_path / "run") as reopened:
        engine = make_engine(parse_config(CONFIG), reopened, LocalPool(lambda: None))
        with pytest.raises(ConfigError, match=r"^quadratic\(.*condition_number=50\.0.*the run "
                                              r"never trained this task"):
            engine.restore()
    monkeypatch.undo()
    search, _, _ = make_search(tmp_path / "run", programs("sgd"))
    assert search.generation == 1


def test_a_corrupt_newest_checkpoint_falls_back_and_still_ends_the_same(tmp_path):
    warm = programs("sgd")
    search, straight, _ = make_search(tmp_path / "straight", warm)
    search.run(4)
    search, store, _ = make_search(tmp_path / "corrupt", warm)
    search.run(3)
    store.close()
    newest = sorted((tmp_path / "corrupt" / "checkpoints").glob("*.msgpack"))[-1]
    newest.write_bytes(newest.read_bytes()[:-7])
    with pytest.warns(UserWarning, match="unreadable"):
        search, resumed, _ = make_search(tmp_path / "corrupt", warm)
    assert search.generation == 2
    search.run(4)
    assert archive_rows(resumed) == archive_rows(straight)


def test_regularized_evolution_recovers_a_known_program_from_its_outputs():
    """Target: signSGD plus the weight; start: SGD. Fitness: -error on fixed inputs."""
    target = parse("def t(w, g, lr):\n    u = lr * (sign(g) + w)\n    return u\n")
    rng = np.random.default_rng(0)
    inputs = {"w": rng.normal(size=32), "g": rng.normal(size=32), "lr": 0.1}
    (wanted,) = evaluate(target, inputs)

    def fit(program):
        with np.errstate(all="ignore"):
            (out,) = evaluate(program, inputs)
        error = float(np.mean((out - wanted) ** 2))
        return -error if np.isfinite(error) else -math.inf

    evolution = RegularizedEvolution(size=40, tournament=6, mutation=MutationConfig(
        max_statements=8, ops=("sign", "mul", "add", "sub", "neg", "abs", "square")))
    children = evolution.initial(programs("sgd"), rng)
    state, next_id = EvolutionState(), 0
    best = -math.inf
    for generation in range(400):
        members = [Member(next_id + i, c.program, fit(c.program)) for i, c in enumerate(children)]
        next_id += len(members)
        best = max([best] + [m.fitness for m in members])
        if best > -1e-12:
            break
        state = evolution.tell(state, members)
        children = evolution.ask(state, rng, 8)
    assert best > -1e-12, f"best error {-best} after {generation} generations"


def test_generation_zero_mutants_descend_from_their_warm_start():
    evolution = RegularizedEvolution(size=12, tournament=2)
    warm = programs("sgd", "momentum")
    children = evolution.initial(warm, np.random.default_rng(0))
    assert [c.parent_id for c in children[:2]] == [None, None]
    assert {c.parent_id for c in children[2:]} == {0, 1}  # both drawn with 10 mutants
    for child in children[2:]:  # a mutant keeps its warm start's params (state included)
        assert child.program.params == warm[child.parent_id].params


def test_failed_children_never_push_a_working_member_out():
    evolution = RegularizedEvolution(size=4, tournament=2)
    sgd = programs("sgd")[0]
    member = lambda i, fitness: Member(i, sgd, fitness)
    state = evolution.tell(EvolutionState(), [member(0, -1.0), member(1, -math.inf),
                                              member(2, -0.5)])
    # a free place takes a failed child, as the oldest
    assert [m.id for m in state.members] == [1, 0, 2]
    state = evolution.tell(state, [member(3, -2.0), member(4, math.nan), member(5, -3.0)])
    # two working children, one place: the failed 1 leaves before the working 0, and the
    # new failure 4 takes no place
    assert [m.id for m in state.members] == [0, 2, 3, 5]
    # nothing but failures: the population stays as it is
    assert evolution.tell(state, [member(6, -math.inf)] * 3) == state


def test_the_elite_stays_while_it_leads_and_everyone_else_ages_out_oldest_first():
    sgd = programs("sgd")[0]
    member = lambda i, fitness: Member(i, sgd, fitness)
    plain = RegularizedEvolution(size=3, tournament=2)
    elite = RegularizedEvolution(size=3, tournament=2, elite=1)
    start = [member(0, 0.5), member(1, -1.0), member(2, -2.0)]
    later = [[member(3, -0.1), member(4, -0.3)], [member(5, 0.4)], [member(6, 0.9)],
             [member(7, math.nan), member(8, -math.inf)]]
    kept, aged = elite.tell(EvolutionState(), start), plain.tell(EvolutionState(), start)
    ids = []
    for children in later:
        kept, aged = elite.tell(kept, children), plain.tell(aged, children)
        ids.append(([m.id for m in kept.members], [m.id for m in aged.members]))
    # without an elite the fittest, 0, leaves with its age; with one it outlives younger
    # members until 6 leads, then leaves as the oldest; failures take no working place
    assert ids == [([0, 3, 4], [2, 3, 4]), ([0, 4, 5], [3, 4, 5]), ([4, 5, 6], [4, 5, 6]),
                   ([4, 5, 6], [4, 5, 6])]
    assert [m.id for m in elite.tell(kept, [member(9, 0.0)]).members] == [5, 6, 9]
    # the elite are the `elite` fittest working members, ties to the older
    two = RegularizedEvolution(size=3, tournament=2, elite=2)
    state = two.tell(EvolutionState(), [member(0, 1.0), member(1, 1.0), member(2, 1.0)])
    assert [m.id for m in two.tell(state, [member(3, 0.0)]).members] == [0, 1, 3]


def test_generation_0_validates_the_warm_starts_and_the_top_members_only(tmp_path):
    broken = parse("def broken(w, g, lr):\n    update = lr * log(-1.0 - abs(g))\n"
                   "    return update\n")  # NaN on every step: a failed member
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum") + [broken])
    search.run(1)
    validated = {record.id for record, _ in store.validated()}
    config = parse_config(CONFIG)
    top = {record.id for record, _ in store.top(config.validation.top)}
    assert {0, 1, 2} <= validated
    assert validated <= {0, 1, 2} | top  # failed mutants (placed first) are not taken
    # NaN on every input: screened as unstable before training (and validated as a warm start)
    assert store.candidate(2).status == "screened"
    assert store.candidate(2).reason.startswith("unstable: ")


@pytest.mark.slow  # a generation of a search, validation included
@pytest.mark.parametrize("setting, seeds", [({"validation.seeds": 3}, 3),
                                            ({"tasks.baseline_seeds": 2}, 2)])
def test_meta_validation_trains_with_its_own_seed_count_else_the_baselines(tmp_path, setting,
                                                                           seeds):
    text = config_variant(CONFIG, setting)
    seen = []

    class Recording(LocalPool):
        def map(self, items):
            seen.extend((i.task.key, i.seeds) for i in items if isinstance(i, ProgramsItem))
            return super().map(items)

    search, store, _ = make_search(tmp_path / "run", programs("sgd"), text,
                                   Recording(lambda: Evaluator(12)))
    search.run(1)
    heldout, = {key for key, _ in seen if "dim=6" in key}
    assert {n for key, n in seen if key == heldout} == {seeds}
    assert {n for key, n in seen if key != heldout} == {1}  # tasks.seeds
    assert store.validation_of(0)  # the warm start was validated
