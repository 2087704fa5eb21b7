"""The README's Python examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.configs import config_variant

ROOT = Path(__file__).resolve().parents[1]


def python_block(heading: str) -> str:
    """The first ```python block after `heading` in README.md."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_python_api_example_runs(tmp_path):
    # the example's code as written, on a smaller search of the quickstart's shape (a smaller
    # population, half its held-out tasks): test_quickstart.py runs the quickstart itself
    (tmp_path / "examples").mkdir()
    quickstart = (ROOT / "examples" / "quickstart.toml").read_text()
    heldout = tomllib.loads(quickstart)["tasks"]["heldout"]
    (tmp_path / "examples" / "quickstart.toml").write_text(config_variant(quickstart, {
        "population.size": 8, "population.children": 4, "tasks.heldout": heldout[::2]}))
    result = subprocess.run([sys.executable, "-c", python_block("## Python API")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "class " in result.stdout and "torch.optim.Optimizer" in result.stdout
    final = float(result.stdout.rsplit("loss after 100 steps:", 1)[1])
    assert final < 14.0  # the start: sum of (0 - i)^2 for i < 4
    assert (tmp_path / "runs" / "api-demo" / "archive.sqlite").is_file()


def test_the_task_family_example_is_a_valid_plugin(tmp_path):
    from disco_rules.discovery.tasks import Task, plugins

    (tmp_path / "readme_tasks.py").write_text(python_block("### Your own task family"))
    plugins.add_search_path(tmp_path)
    task = Task.make("readme_tasks:least_squares", dim=3)
    problem = task.build()
    assert problem.horizon == 100 and task.key == "readme_tasks:least_squares(dim=3,horizon=100)"
