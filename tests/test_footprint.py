"""The memory estimate counts everything a work item scales with (the candidates' grid and
seeds, meta-validation's seeds, the baseline's lr x schedule x weight-decay grid and seeds) and
is compared with the memory this machine has available, not its size."""

import pytest

from disco_rules.discovery import footprint
from disco_rules.discovery.config import ConfigError, parse_config
from disco_rules.discovery.plan import TaskPlan

BASE = {"tasks.seeds": "1", "tasks.lr_grid": "[0.01]", "tasks.wd_grid": "[0.0001]",
        "tasks.baseline_schedules": '["constant"]',
        "validation.seeds": "1", "cluster.batch_size": "2", "population.max_statements": "8"}


def config(horizon: int = 20, **changes):
    """A small config with one training and one held-out task of `horizon` steps;
    `tasks__seeds="4"` sets tasks.seeds."""
    values = {**BASE, **{key.replace("__", "."): value for key, value in changes.items()}}
    sections: dict[str, list[str]] = {}
    for key, value in values.items():
        section, name = key.split(".")
        sections.setdefault(section, []).append(f"{name} = {value}")
    sections["tasks"] += [f'train = [{{ family = "quadratic", dim = 64, horizon = {horizon} }}]',
                          'heldout = [{ family = "mlp_regression", in_dim = 8, width = 16, '
                          f'horizon = {horizon} }}]']
    return parse_config("\n".join(f"[{section}]\n" + "\n".join(lines)
                                  for section, lines in sections.items()))


def estimate(cfg) -> int:
    return footprint.estimate_bytes(cfg, TaskPlan.from_config(cfg))


@pytest.mark.parametrize("key, value", [
    ("tasks__seeds", "40"),  # the candidates' seeds (and the baseline's, unless set apart)
    ("tasks__lr_grid", str([0.001 * i for i in range(1, 41)])),  # both grids' lrs
    ("validation__seeds", "40"),  # meta-validation's seeds, on the held-out tasks
    ("tasks__baseline_seeds", "40"),  # the baseline's own seeds
    ("tasks__wd_grid", str([0.0] + [1e-4 * i for i in range(1, 40)])),  # its weight decays
    ("cluster__batch_size", "400"),  # programs per work item (their curves)
    ("population__max_statements", "400"),  # the interpreter's registers
])
def test_the_estimate_grows_with_everything_a_work_item_scales_with(key, value):
    assert estimate(config(**{key: value})) > estimate(config())


def test_a_longer_horizon_costs_no_memory_since_a_run_returns_a_fixed_length_curve():
    assert estimate(config(horizon=2_000)) == estimate(config(horizon=20))


def test_the_estimate_grows_with_the_baselines_schedules():
    # with the baseline the largest item (many seeds), each schedule it is tuned over counts
    many = {"tasks__baseline_seeds": "40"}
    one = estimate(config(**many))
    two = estimate(config(**many, tasks__baseline_schedules='["constant", "cosine"]'))
    three = estimate(config(**many, tasks__baseline_schedules='["constant", "cosine", '
                                                              '"warmup_cosine"]'))
    assert one < two < three


def test_validation_seeds_count_on_held_out_tasks_only():
    cfg = config(validation__seeds="40")
    items = footprint.work_items(cfg, TaskPlan.from_config(cfg))
    assert any("mlp_regression" in item.what and "40 seeds" in item.what for item in items)
    assert not any("quadratic" in item.what and "40 seeds" in item.what for item in items)


def test_a_run_is_checked_against_available_memory(monkeypatch):
    cfg = config()
    needed = estimate(cfg)
    monkeypatch.setattr(footprint, "physical_memory", lambda: 100 * needed)  # a big machine
    monkeypatch.setattr(footprint, "available_memory", lambda: needed * 2)
    footprint.check_memory(cfg, None)
    monkeypatch.setattr(footprint, "available_memory", lambda: needed // 2)  # mostly in use
    with pytest.raises(ConfigError, match=r"largest work item, 2 programs x 1 lr point x 1 seed "
                                          r"on .*over this machine's \d+\.\d GiB available "
                                          r"\(of \d+\.\d GiB\): lower tasks\.seeds, "
                                          r"validation\.seeds, tasks\.baseline_seeds"):
        footprint.check_memory(cfg, None)
    footprint.check_memory(cfg, "auto")  # a cluster's nodes are checked once connected


def test_available_memory_is_memavailable_or_the_machines_size(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683584 kB\nMemFree:         1000000 kB\n"
                       "MemAvailable:    2000000 kB\n")
    assert footprint.available_memory(str(meminfo)) == 2_000_000 * 1024
    assert footprint.available_memory(str(tmp_path / "none")) == footprint.physical_memory()
