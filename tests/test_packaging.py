"""The wheel: one top-level import package, disco_rules, holding every subpackage of the
repository's folders and the shipped programs; no bare dsl/discovery/populations/cluster."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"dsl": "disco_rules/dsl", "populations": "disco_rules/populations",
           "discovery": "disco_rules/discovery", "cluster": "disco_rules/cluster",
           "disco_rules": "disco_rules"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(ROOT), "-w", str(out)], check=True, capture_output=True)
    (built,) = out.glob("disco_rules-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow  # `wheel` builds the wheel
def test_the_wheel_installs_one_top_level_package(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"disco_rules"}


@pytest.mark.slow
def test_every_subpackage_of_the_repository_is_in_the_wheel(wheel):
    expected = set()
    for folder, target in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            expected.add(f"{target}/{relative}/__init__.py".replace("/./", "/"))
    assert expected <= set(wheel.namelist())


@pytest.mark.slow
def test_the_shipped_programs_are_package_data(wheel):
    shipped = {Path(n).stem for n in wheel.namelist() if n.startswith("disco_rules/dsl/programs/")}
    assert {"sgd", "momentum", "adam", "adamw", "lion", "ppo_clip", "dpo"} <= shipped


def test_the_code_imports_only_through_the_namespace():
    bare = subprocess.run(
        ["git", "grep", "-nE", r"^\s*(from|import) (dsl|populations|discovery|cluster)\b", "--",
         "*.py"], cwd=ROOT, capture_output=True, text=True).stdout
    assert bare == ""


def _in_bare_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a Python without site-packages (so without an installed or editable
    disco_rules) whose first path entry is the repository's root, as a `pip install .` user's
    interpreter or Ray worker started in a clone is."""
    return subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, "
                           f"{str(ROOT)!r}); {code}"], cwd=ROOT, capture_output=True, text=True)


def test_from_a_clones_root_the_folder_disco_rules_holds_the_repositorys_subpackages():
    done = _in_bare_python("import disco_rules.dsl.parser as p, disco_rules.discovery.search.kinds"
                           " as k; print(p.__file__); print(k.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(ROOT / "dsl" / "parser.py"),
                                   str(ROOT / "discovery" / "search" / "kinds.py")]


@pytest.mark.parametrize("folder", ["dsl", "discovery", "populations", "cluster"])
def test_a_bare_import_of_a_folder_fails_instead_of_making_a_second_copy(folder):
    done = _in_bare_python(f"import {folder}")
    assert done.returncode == 1
    assert f"ImportError: import disco_rules.{folder}, not {folder}:" in done.stderr
