"""Exported torch optimizers against torch.optim's own: time per `step()` on the same
parameters and gradients (no forward or backward pass, so the optimizer is all that runs).

SGD and momentum export to in-place ops only (`m.mul_(0.9).add_(g)`, `p.add_(m,
alpha=-lr)`); Adam's export keeps the program's quotients m / (1 - 0.9 ** step) and
v / (1 - 0.999 ** step) as tensors where torch.optim.Adam fuses them (`addcdiv_`), about 2x
slower on a loaded 2-core machine (sgd 0.8x, momentum 0.9x). Prints microseconds
per step (the fastest of several alternating rounds) and the ratio export / torch.optim
(1.0: as fast).

    python bench/export_torch.py [--size 1000000] [--tensors 8] [--steps 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from types import ModuleType
from typing import Callable

import torch

from disco_rules.dsl import library
from disco_rules.export import export


def exported(name: str) -> type[torch.optim.Optimizer]:
    """The torch export of shipped program `name`, loaded from its source."""
    module = ModuleType(f"exported_{name}")
    exec(compile(export(library.program(name), "torch"), module.__name__, "exec"),  # noqa: S102
         module.__dict__)
    return next(v for v in vars(module).values()
                if isinstance(v, type) and issubclass(v, torch.optim.Optimizer))


def optimizer_of(make: Callable, size: int, tensors: int) -> torch.optim.Optimizer:
    """The optimizer `make(params)` over `tensors` tensors of `size` with gradients, warm."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(size, generator=generator, requires_grad=True)
              for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=generator) * 1e-3
    optimizer = make(params)
    for _ in range(5):  # state created, caches warm
        optimizer.step()
    return optimizer


def seconds_per_step(optimizer: torch.optim.Optimizer, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="elements per tensor")
    parser.add_argument("--tensors", type=int, default=8, help="parameter tensors")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds, alternating the two; the fastest round of each counts")
    args = parser.parse_args()
    lr = 1e-3
    pairs = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr, foreach=False),
        "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, foreach=False),
        "adam": lambda p: torch.optim.Adam(p, lr=lr, foreach=False),
    }
    print(f"{args.tensors} tensors x {args.size} float32, {args.rounds} x {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'rule':<10}{'export us':>12}{'torch.optim us':>16}{'ratio':>8}")
    for name, reference in pairs.items():
        optimizers = [optimizer_of(lambda p: exported(name)(p, lr=lr), args.size,
                                   args.tensors),
                      optimizer_of(reference, args.size, args.tensors)]
        times = [[], []]
        for _ in range(args.rounds):  # alternating, so that load on the machine hits both
            for optimizer, measured in zip(optimizers, times):
                measured.append(seconds_per_step(optimizer, args.steps))
        ours, theirs = min(times[0]), min(times[1])
        print(f"{name:<10}{ours * 1e6:>12.0f}{theirs * 1e6:>16.0f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
