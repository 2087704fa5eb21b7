"""disco: a distributed evolutionary engine that discovers learning algorithms.

    import disco_rules
    run = disco_rules.launch("quickstart.toml")          # or resume(RUN), open_run(RUN)
    best = run.top(1)[0]                                  # a Candidate
    tx = best.optax(learning_rate=1e-3)                   # a live optax transformation
    disco_rules.transfer(run, {"best": best.program}).verdict("best").text("best")

The repository's folders `dsl/`, `populations/`, `discovery/` and `cluster/` install as the
subpackages `disco_rules.dsl`, `disco_rules.populations`, `disco_rules.discovery` and
`disco_rules.cluster`. Names here load on first use, so `import disco_rules` is cheap.
"""

from importlib import import_module
from pathlib import Path
from typing import Any

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "discovery" / "__init__.py").is_file():
    # Imported from a clone's root (Python's '' path entry; Ray puts the driver's folder on
    # every worker's path), this folder shadows the installed package: its subpackages are
    # the repository's sibling folders, as the wheel's package-dir maps them.
    __path__.append(str(_CHECKOUT))

__version__ = "0.2.0"

_EXPORTS = {
    "launch": "disco_rules.api", "resume": "disco_rules.api", "open_run": "disco_rules.api",
    "transfer": "disco_rules.api", "Transfer": "disco_rules.discovery.transfer",
    "TransferError": "disco_rules.discovery.transfer",
    "Run": "disco_rules.api", "Candidate": "disco_rules.api", "Status": "disco_rules.api",
    "CandidateStatus": "disco_rules.discovery.status",
    "Program": "disco_rules.dsl.program", "ProgramError": "disco_rules.dsl.program",
    "Config": "disco_rules.discovery.config", "ConfigError": "disco_rules.discovery.config",
    "parse_config": "disco_rules.discovery.config",
    "Family": "disco_rules.discovery.tasks", "Problem": "disco_rules.discovery.tasks",
    "Environment": "disco_rules.discovery.tasks", "Range": "disco_rules.discovery.tasks",
    "Choice": "disco_rules.discovery.tasks", "Task": "disco_rules.discovery.tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'disco_rules' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
