"""Progress of long phases: plain lines off a terminal (only for phases that last), one
redrawn line on a terminal or in a notebook, nothing for quick phases, a pool whose map
counts its results and names each batch once by what it is, and the Python API's display."""

import io
import sys

import pytest

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.evaluator import BaselineItem, ProgramsItem
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.progress import (Progress, ProgressPool, describe, for_api,
                                            interactive, task_roles)
from disco_rules.discovery.tasks import Task


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(live, every_s=15.0):
    stream, clock = io.StringIO(), Clock()
    return Progress(stream, live=live, every_s=every_s, tick_s=60.0, clock=clock), stream, clock


def test_a_quick_phase_shows_nothing():
    for live in (False, True):
        progress, stream, clock = make(live)
        with progress.phase("baselines", 3) as phase:
            clock.now += 1.0
            phase.advance(3)
        assert stream.getvalue() == ""


def test_off_a_terminal_a_phase_shorter_than_every_s_shows_nothing():
    progress, stream, clock = make(live=False)
    with progress.phase("generation 0: training on 2 tasks", 4) as phase:
        clock.now += 10.0
        phase.advance(4)
    assert stream.getvalue() == ""


def test_off_a_terminal_a_long_phase_is_plain_lines_with_counts_and_time_left():
    progress, stream, clock = make(live=False)
    with progress.phase("generation 0: training on 2 tasks", 4) as phase:
        clock.now += 10.0
        phase.advance()  # before every_s: no line yet
        clock.now += 5.0
        phase.advance()  # 2 of 4 in 15 s: 15 s left
        clock.now += 1.0
        phase.advance()  # within every_s of the last line: no line
        clock.now += 20.0
        phase.advance()
    assert stream.getvalue().splitlines() == [
        "generation 0: training on 2 tasks: 2/4 [##########----------] 15s, ~15s left",
        "generation 0: training on 2 tasks: 4/4 [####################] 36s",
        "generation 0: training on 2 tasks: done, 4/4 in 36s"]


def test_a_phase_names_the_part_it_works_on_in_its_later_lines():
    progress, stream, clock = make(live=False)
    with progress.phase("transfer: tasks trained", 2) as phase:
        phase.working_on("quadratic(dim=4) (held-out)")
        clock.now += 20.0
        phase.advance()
        phase.working_on("quadratic(dim=4,horizon=160) (4x horizon)")
        clock.now += 20.0
        phase.advance()
    assert stream.getvalue().splitlines() == [
        "transfer: tasks trained: 1/2 [##########----------] 20s, ~20s left; "
        "now quadratic(dim=4) (held-out)",
        "transfer: tasks trained: 2/2 [####################] 40s; "
        "now quadratic(dim=4,horizon=160) (4x horizon)",
        "transfer: tasks trained: done, 2/2 in 40s"]


def test_parts_that_had_nothing_to_do_do_not_set_the_time_left():
    progress, stream, clock = make(live=False)
    with progress.phase("transfer: tasks trained", 4) as phase:
        clock.now += 0.5
        phase.advance(cached=True)  # read back from a cache
        clock.now += 0.5
        phase.advance(cached=True)
        clock.now += 20.0
        phase.advance()  # the first part that trained: 20 s, so 20 s for the last
    assert stream.getvalue().splitlines()[0] == \
        "transfer: tasks trained: 3/4 [###############-----] 21s, ~20s left"


def test_a_phase_that_an_exception_ends_says_stopped_not_done():
    progress, stream, clock = make(live=False)
    with pytest.raises(KeyboardInterrupt):
        with progress.phase("generation 0: training on 2 tasks", 4) as phase:
            clock.now += 15.0
            phase.advance()
            clock.now += 4.0
            raise KeyboardInterrupt
    assert stream.getvalue().splitlines()[-1] == \
        "generation 0: training on 2 tasks: stopped, 1/4 after 19s"


def test_on_a_terminal_a_phase_is_one_line_redrawn_and_erased():
    progress, stream, clock = make(live=True)
    with progress.phase("starting Ray") as phase:
        clock.now += 3.0
        phase.advance()
        clock.now += 2.0
        phase.advance()
    text = stream.getvalue()
    assert "\n" not in text
    assert "\rstarting Ray... 3s" in text and "\rstarting Ray... 5s" in text
    assert text.endswith(" " * len("starting Ray... 5s") + "\r")  # erased


class BatchPool(LocalPool):
    """A pool whose map reports nothing until the whole batch is done."""

    def map(self, items):
        return super().map(items)


def test_a_progress_pool_counts_results_and_passes_them_on():
    seen = []
    for kind in (LocalPool, BatchPool):
        progress, stream, clock = make(live=False, every_s=0.0)

        def slow_double(x):
            clock.now += 5.0  # every_s is 0: each result is a line
            return 2 * x

        pool = kind(lambda: slow_double)
        wrapped = ProgressPool(pool, progress, context="generation 2")
        assert wrapped.map([1, 2, 3], on_result=lambda i, r: seen.append((i, r))) == [2, 4, 6]
        assert wrapped.completed == 3  # the wrapped pool's counters show through
        lines = stream.getvalue().splitlines()
        assert lines[-2].startswith("generation 2: work items: 3/3 ")
        assert lines[-1] == "generation 2: work items: done, 3/3 in 15s"
        counts = [line.split()[4] for line in lines[:-1]]
        assert counts == (["1/3", "2/3", "3/3"] if kind is LocalPool else ["3/3"])
    assert seen == [(0, 2), (1, 4), (2, 6)] * 2


def _item(kind, task):
    item = kind.__new__(kind)
    object.__setattr__(item, "task", task)  # frozen dataclasses
    return item


QUAD, MLP, CLS = (Task.make("quadratic", horizon=30), Task.make("mlp_regression"),
                  Task.make("classification"))


def test_a_batch_is_named_by_its_work_and_counts_its_tasks():
    roles = {QUAD.key: "screening", MLP.key: "training", CLS.key: "validation"}
    baselines = [_item(BaselineItem, task) for task in (QUAD, MLP, CLS)]
    assert describe(baselines, roles) == "baselines on 3 tasks"
    assert describe([_item(ProgramsItem, QUAD)] * 2, roles) == "screening on 1 task"
    assert describe([_item(ProgramsItem, MLP)] * 3, roles) == "training on 1 task"
    assert describe([_item(ProgramsItem, CLS), _item(ProgramsItem, MLP)], roles) == \
        "validation and training on 2 tasks"
    level = Task.make("quadratic", horizon=77)  # drawn by a scheduler: not in the plan
    assert describe([_item(ProgramsItem, level)], roles) == "training on 1 task"
    assert describe([1, 2]) == "work items" and describe([]) == "work items"


def test_each_phase_of_a_generation_has_its_own_label():
    plan = TaskPlan(train=(MLP,), heldout=(CLS,), screen=QUAD)
    roles = task_roles(plan)
    assert roles == {QUAD.key: "screening", MLP.key: "training", CLS.key: "validation"}
    # a screen task that also trains is counted as training
    assert task_roles(TaskPlan(train=(QUAD,), heldout=(CLS,), screen=QUAD))[QUAD.key] == \
        "training"
    progress, stream, clock = make(live=False, every_s=0.0)

    def slow(item):
        clock.now += 1.0
        return 0

    pool = ProgressPool(LocalPool(lambda: slow), progress, "generation 0", roles)
    for batch in ([_item(BaselineItem, t) for t in (QUAD, MLP, CLS)],
                  [_item(ProgramsItem, QUAD)] * 2, [_item(ProgramsItem, MLP)] * 2,
                  [_item(ProgramsItem, CLS)]):
        pool.map(batch)
    done = [line for line in stream.getvalue().splitlines() if ": done" in line]
    assert done == ["generation 0: baselines on 3 tasks: done, 3/3 in 3s",
                    "generation 0: screening on 1 task: done, 2/2 in 2s",
                    "generation 0: training on 1 task: done, 2/2 in 2s",
                    "generation 0: validation on 1 task: done, 1/1 in 1s"]


def test_a_phase_known_to_be_long_shows_at_once():
    progress, stream, clock = make(live=False)
    with progress.phase("starting Ray", at_once=True):
        assert stream.getvalue() == "starting Ray... 0s\n"
        clock.now += 20.0
    assert stream.getvalue().splitlines()[-1] == "starting Ray: done in 20s"


class NotebookStream(io.StringIO):
    """Stands for Jupyter's output stream: not a terminal, but it redraws a line on \\r."""


NotebookStream.__module__ = "ipykernel.iostream"


def test_a_line_is_redrawn_on_a_terminal_or_in_a_notebook_and_nowhere_else(monkeypatch):
    assert not interactive(io.StringIO())
    assert interactive(NotebookStream())
    assert Progress(NotebookStream()).live and not Progress(io.StringIO()).live
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert for_api(None) is None and for_api(False) is None
    assert isinstance(for_api(True), Progress)
    monkeypatch.setattr(sys, "stdout", NotebookStream())
    assert for_api(None).live and for_api(False) is None
