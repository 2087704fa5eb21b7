"""One-line reasons for errors raised by work, naming where in the user's own code they were
raised: `in loss() at my_task.py:12: TypeError: dot_general requires ...`.

The user's code is any file outside disco's packages, Python's standard library and installed
packages (site-packages): a plug-in task module beside a config, or the copy Ray gives its
workers (py_modules). The innermost such frame of a traceback is named: the line of the
user's that called into the library which raised. Importable without Ray or JAX.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sysconfig
import traceback
from pathlib import Path
from typing import NamedTuple, Sequence

DISCO_PACKAGES = ("disco_rules", "disco_rules.cluster", "disco_rules.discovery",
                  "disco_rules.dsl", "disco_rules.populations")
INSTALLED = ("site-packages", "dist-packages")

# A frame's header in a formatted traceback (Python's, which Ray's errors carry as text).
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>\S+)$',
                    re.MULTILINE)


class Frame(NamedTuple):
    """A traceback frame: file, line and function."""

    file: str
    line: int
    name: str


@functools.lru_cache(maxsize=1)
def _library_folders() -> tuple[Path, ...]:
    """Folders whose files are not the user's: disco's packages and the standard library."""
    folders = [Path(p).resolve() for key in ("stdlib", "platstdlib")
               if (p := sysconfig.get_paths().get(key))]
    for name in DISCO_PACKAGES:  # each package's own folder (a checkout's disco_rules also
        spec = importlib.util.find_spec(name)  # searches the root, which holds tests/ too)
        folders.append(Path(spec.origin).resolve().parent)
    return tuple(folders)


def is_users(file: str) -> bool:
    """Whether a frame's file is the user's own code (see the module docstring)."""
    if file.startswith("<"):  # <frozen ...>, <string>: no file to point at
        return False
    path = Path(file).resolve()
    if any(part in INSTALLED for part in path.parts):
        return False
    return not any(path.is_relative_to(folder) for folder in _library_folders())


def frames_of(error: BaseException) -> list[Frame]:
    """The frames of an error's own traceback, outermost first."""
    return [Frame(f.filename, f.lineno or 0, f.name)
            for f in traceback.extract_tb(error.__traceback__)]


def frames_in(text: str) -> list[Frame]:
    """The frames of a traceback formatted as text (a Ray worker's), outermost first."""
    return [Frame(m["file"], int(m["line"]), m["name"]) for m in _FRAME.finditer(text)]


def user_frame(frames: Sequence[Frame]) -> Frame | None:
    """The innermost frame in the user's code, or None."""
    return next((frame for frame in reversed(frames) if is_users(frame.file)), None)


def one_line(error: BaseException, frames: Sequence[Frame] | None = None) -> str:
    """`Type: message` (the message's first line), after where the user's code raised it
    (`in loss() at my_task.py:12: `) if it did; `frames` default to the error's own."""
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    frame = user_frame(frames_of(error) if frames is None else frames)
    if frame is None:
        return text
    return f"in {frame.name}() at {Path(frame.file).name}:{frame.line}: {text}"


def debug_traceback(error: BaseException) -> str:
    """The error's traceback with every error it was raised from or during, also those a
    one-line message hid (`raise ... from None`): what DISCO_DEBUG=1 shows."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not e for e in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return "\nThe error above led to this one:\n\n".join(
        "".join(traceback.format_exception(type(e), e, e.__traceback__, chain=False))
        for e in reversed(chain))
