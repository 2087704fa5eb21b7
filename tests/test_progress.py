"""Progress of long phases: plain lines off a terminal, one redrawn line on it, nothing for
quick phases, and a pool whose map counts its results."""

import io

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.progress import Progress, ProgressPool, describe


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


def test_off_a_terminal_a_long_phase_is_plain_lines_with_counts_and_time_left():
    progress, stream, clock = make(live=False)
    with progress.phase("generation 0: training", 4) as phase:
        clock.now += 10.0
        phase.advance()  # 1 of 4 in 10 s: 30 s left
        clock.now += 1.0
        phase.advance()  # within every_s of the last line: no line
        clock.now += 20.0
        phase.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "generation 0: training: 1/4 [#####---------------] 10s, ~30s left"
    assert lines[1].startswith("generation 0: training: 3/4 ")
    assert lines[2] == "generation 0: training: done, 3/4 in 31s"
    assert "\r" not in stream.getvalue()


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
            clock.now += 5.0  # every result is past quiet_s: each one is a line
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


def test_work_items_are_described_by_kind():
    from disco_rules.discovery.evaluator import BaselineItem, ProgramsItem

    baseline = BaselineItem.__new__(BaselineItem)
    programs = ProgramsItem.__new__(ProgramsItem)
    assert describe([baseline, baseline]) == "baselines"
    assert describe([baseline, programs]) == "baselines and training"
    assert describe([]) == "work items"


def test_a_phase_known_to_be_long_shows_at_once():
    progress, stream, clock = make(live=False)
    with progress.phase("starting Ray", at_once=True):
        assert stream.getvalue() == "starting Ray... 0s\n"
        clock.now += 20.0
    assert stream.getvalue().splitlines()[-1] == "starting Ray: done in 20s"
