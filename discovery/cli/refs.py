"""What a command names: a run directory, a stored candidate `RUN:ID`, or a program file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from disco_rules.discovery.cli.errors import CliError
from disco_rules.discovery.store import ARCHIVE_NAME, CandidateRecord, RunStore, StoreError
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program, ProgramError


def split_ref(ref: str) -> tuple[Path, int] | None:
    """(run dir, candidate id) for `RUN:ID`, None for anything else."""
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isdigit() and Path(head).is_dir():
        return Path(head), int(tail)
    return None


def open_run(run_dir: str | Path, write: bool = False) -> RunStore:
    """The run's store: a snapshot to read, or (write) the run itself, under its lock."""
    try:
        return RunStore.open(run_dir, write=write)
    except StoreError as error:
        raise CliError(str(error)) from None


def _stored_candidate(ref: str, run_dir: Path, cid: int) -> CandidateRecord:
    """The archived candidate `cid` of `run_dir`; CliError if there is none."""
    with open_run(run_dir) as store:
        try:
            return store.candidate(cid)
        except KeyError:
            raise CliError(f"{ref}: run {run_dir} has no candidate {cid} "
                           f"(see `disco inspect {run_dir}`)") from None


def load_program(ref: str) -> Program:
    """The program named by `ref`: a file of program text, or `RUN:ID` from a run's archive."""
    stored = split_ref(ref)
    if stored is not None:
        record = _stored_candidate(ref, *stored)
        if record.weights is not None:
            raise CliError(f"{ref} is a {record.kind} network, not a program: export it with "
                           f"`disco export {ref} --format jax` or plot it with "
                           f"`disco plot {ref} --drift -o FILE.png`")
        return parse(record.text)
    path = Path(ref)
    if path.is_dir() and (path / ARCHIVE_NAME).is_file():
        raise CliError(_name_a_candidate(ref))
    if not path.is_file():
        raise CliError(f"{ref}: no such program file or RUN:ID")
    try:
        return parse(path.read_text())
    except ProgramError as error:
        raise CliError(f"{ref}: {error}") from None
    except UnicodeDecodeError:
        raise CliError(f"{ref}: not a text file") from None


def _name_a_candidate(run_dir: str) -> str:
    """What to write instead of a run directory where a candidate is wanted: RUN:ID, with
    the id of the run's best (by meta-validation, else training fitness, as inspect ranks)."""
    with open_run(run_dir) as store:
        best = store.top(1, by="validation") or store.top(1)
    example = f", e.g. its best, {run_dir}:{best[0][0].id}" if best else ""
    return (f"{run_dir} is a run directory: name one of its candidates as {run_dir}:ID"
            f"{example} (see `disco inspect {run_dir}`)")


def load_network(ref: str) -> tuple[Any, Any] | None:
    """(network shape, weights) of a network candidate `RUN:ID`; None for anything else."""
    stored = split_ref(ref)
    if stored is None:
        return None
    record = _stored_candidate(ref, *stored)
    if record.weights is None:
        return None
    from disco_rules.discovery.search.kinds import network_from_text  # imports JAX

    return network_from_text(record.text), record.weights


def load_rule(ref: str) -> Program | tuple[Any, Any]:
    """The rule `ref` names: a network candidate's (shape, weights), else a program."""
    network = load_network(ref)
    return load_program(ref) if network is None else network


def newest_checkpoint(store: RunStore) -> tuple | None:
    """The run's newest intact checkpoint; each unreadable newer one is a one-line warning
    (when none is intact, CheckpointError alone is the error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = store.load_checkpoint()
    for warning in caught:
        print(f"disco: warning: {warning.message}", file=sys.stderr)
    return checkpoint
