"""Real data that ships offline: scikit-learn's bundled datasets and a text corpus from
Python's standard library, loaded once per process as numpy arrays.

Nothing here touches the network: `load_digits`, `load_diabetes`, `load_breast_cancer` and
`load_wine` read files inside scikit-learn's wheel, the corpus is the help text of
`pydoc_data.topics` (the topics `help()` shows), which ships with CPython, and the code text is
the source of a fixed list of pure-Python standard-library modules (`python_source`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

TABULAR = ("diabetes", "breast_cancer", "wine")  # the tabular datasets, by name
VOCABULARY = "\n" + "".join(chr(c) for c in range(32, 127))  # newline and printable ASCII
UNKNOWN = VOCABULARY.index("?")  # where characters outside the vocabulary go


class Dataset(NamedTuple):
    """Features [n, d] float32 and targets: int32 class labels [n], or float32 values [n, 1]."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int  # 0 for regression


def _standardised(x: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and standard deviation 1 (constant columns left at 0)."""
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


@functools.cache
def digits() -> Dataset:
    """scikit-learn's 1797 handwritten digits: 8x8 grey images scaled to [0, 1], 10 classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset((bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int32), 10)


@functools.cache
def tabular(name: str) -> Dataset:
    """A standardised tabular dataset: `diabetes` (442 patients, 10 features, regression of
    disease progression, target standardised too), `breast_cancer` (569, 30, 2 classes) or
    `wine` (178, 13, 3 classes)."""
    from sklearn import datasets

    if name not in TABULAR:
        raise ValueError(f"unknown tabular dataset {name!r}; valid: {', '.join(TABULAR)}")
    bunch = getattr(datasets, f"load_{name}")()
    x = _standardised(bunch.data)
    if name == "diabetes":
        return Dataset(x, _standardised(bunch.target[:, None].astype(np.float64)), 0)
    return Dataset(x, bunch.target.astype(np.int32), int(bunch.target.max()) + 1)


@functools.cache
def corpus() -> np.ndarray:
    """The help topics of `pydoc_data.topics`, in topic order, as indices into VOCABULARY
    (uint8; characters outside it become '?')."""
    from pydoc_data.topics import topics

    return _indices("\n".join(topics[name] for name in sorted(topics)))


SOURCE_MODULES = ("argparse", "ast", "bisect", "calendar", "colorsys", "csv", "dataclasses",
                  "fractions", "graphlib", "heapq", "shlex", "statistics", "string", "textwrap")
"""Pure-Python standard-library modules whose source is the code text, in this (sorted) order."""


@functools.cache
def python_source() -> np.ndarray:
    """The source code of SOURCE_MODULES (about 420 KB on CPython 3.11), concatenated in order,
    as indices into VOCABULARY (uint8; characters outside it become '?'). Read through each
    module's loader without importing it, so it works offline in any CPython install; the text
    is that of the running Python version, so it changes when Python does."""
    import importlib.util

    sources = []
    for name in SOURCE_MODULES:
        spec = importlib.util.find_spec(name)
        source = spec.loader.get_source(name) if spec and spec.loader else None
        if source is None:
            raise RuntimeError(f"the source of the standard-library module {name!r} is not "
                               f"installed with this Python")
        sources.append(source)
    return _indices("\n".join(sources))


def _indices(text: str) -> np.ndarray:
    """`text` as indices into VOCABULARY (uint8); characters outside it become UNKNOWN."""
    table = np.full(0x110000, UNKNOWN, np.uint8)
    table[[ord(c) for c in VOCABULARY]] = np.arange(len(VOCABULARY), dtype=np.uint8)
    return table[np.frombuffer(text.encode("utf-32-le"), np.uint32)]
