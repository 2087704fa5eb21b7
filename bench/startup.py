"""Time to first result: how long a user waits for the command line.

1. `disco launch CONFIG --generations 1` three times, each in a fresh process with a fresh
   run directory: with JAX's compilation cache off (every launch compiles everything, the
   behaviour before the cache), with an empty cache (cold), and again with the cache the
   cold launch filled (warm). For each: seconds from launch to the first line of output, to
   the first progress line, to the end of Ray's start, and to the first generation line;
   and the compiled functions each launch wrote to the cache (0 when nothing was compiled
   anew, by the driver or any actor).
2. The command line's response time: a missing config file, a misspelt key, and
   `disco export RUN:ID` of the warm run's best program.

    python bench/startup.py [--config examples/quickstart.toml]

Several minutes on 2 cores (the cold launches compile everything).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DISCO = [sys.executable, "-m", "disco_rules.discovery.cli"]
MARKS = {  # name -> what the first line of that event looks like
    "first output": re.compile(r"."),
    "progress": re.compile(r"^(loading JAX|starting Ray|generation \d+)"),
    "Ray started": re.compile(r"^starting Ray.*: done|Started a local Ray instance"),
    "first generation": re.compile(r"^gen\s+0 "),
}


def cache_entries(cache: str) -> set[str]:
    """The compiled functions in a cache folder (each compilation that missed the cache
    writes one; "off": none)."""
    folder = Path(cache)
    return {p.name for p in folder.iterdir() if p.name.endswith("-cache")} \
        if cache != "off" and folder.is_dir() else set()


def timed_launch(config: str, run_dir: Path, cache: str) -> dict[str, float]:
    """Seconds from launch to the first line matching each of MARKS (missing: NaN), and the
    number of compiled functions the launch added to the cache."""
    before = cache_entries(cache)
    env = {**os.environ, "DISCO_COMPILATION_CACHE": cache, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen([*DISCO, "launch", config, "--generations", "1",
                                "--run-dir", str(run_dir)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: dict[str, float] = {}
    for line in process.stdout:
        now = time.perf_counter() - started
        for name, pattern in MARKS.items():
            if name not in seen and pattern.search(line):
                seen[name] = now
    if process.wait() != 0:
        raise SystemExit(f"disco launch failed with exit code {process.returncode}")
    seen["exit"] = time.perf_counter() - started
    seen["compiled anew"] = float(len(cache_entries(cache) - before)) if cache != "off" \
        else float("nan")
    return {name: seen.get(name, float("nan")) for name in [*MARKS, "exit", "compiled anew"]}


def timed_command(args: list[str]) -> float:
    """Seconds a CLI command takes, whatever its exit code."""
    started = time.perf_counter()
    subprocess.run([*DISCO, *args], capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/quickstart.toml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        launches = {}
        for label, cache in (("cache off", "off"), ("cold cache", str(tmp_path / "jax")),
                             ("warm cache", str(tmp_path / "jax"))):
            launches[label] = timed_launch(args.config, tmp_path / label.replace(" ", "-"),
                                           cache)
            print(f"{label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in launches[label].items()),
                  flush=True)
        print("\nseconds after launch   " + "  ".join(f"{label:>10s}" for label in launches))
        for mark in [*MARKS, "exit", "compiled anew"]:
            print(f"{mark:22s} " + "  ".join(f"{launches[label][mark]:10.1f}"
                                            for label in launches))
        ray = {label: t["first generation"] - t["Ray started"] for label, t in launches.items()}
        print(f"{'gen 0 after Ray start':22s} " + "  ".join(f"{ray[label]:10.1f}"
                                                         for label in launches))

        bad_key = tmp_path / "bad.toml"
        bad_key.write_text(Path(args.config).read_text().replace("tournament", "tournamnet"))
        commands = {
            "config file missing": ["launch", str(tmp_path / "nope.toml")],
            "misspelt config key": ["launch", str(bad_key)],
            "export RUN:ID": ["export", f"{tmp_path / 'warm-cache'}:0", "--format", "optax"],
        }
        print("\ncommand line response")
        for label, command in commands.items():
            print(f"{label:22s} {timed_command(command):6.1f} s", flush=True)


if __name__ == "__main__":
    main()
