"""Task families: the small training problems optimizer programs are scored on, and the
gymnax environments whose agents score learned objectives.

Like gymnax environments, a task is explicit parameters (`Task`, a level of a `Family`) and a
`Problem` of pure functions of PRNG keys (or, for RL families, an `Environment`). Families
live in one registry (`FAMILIES`, filled by `register`), and a family's `kind` names a task kind
(`kinds.TASK_KINDS`: "optimizer", "rl"); one module per group of families adds its own:
`supervised`, `real` (real data: digits, tables, sequence copy, a character-level
transformer), `heldout` (meta-validation families sharing neither architecture nor data with
the others: a convolutional autoencoder, a transformer on Python source code, matrix
completion), `rl` (gymnax), `gridworld` (LPG's gridworlds).
"""

from disco_rules.discovery.tasks.family import (FAMILIES, Choice, Environment, Family, Problem,
                                                Range, Task, family, register)
from disco_rules.discovery.tasks import (gridworld, heldout, real, rl,  # noqa: F401
                                        supervised)  # (they register)
from disco_rules.discovery.tasks.rl import make_env

__all__ = ["FAMILIES", "Choice", "Environment", "Family", "Problem", "Range", "Task", "family",
           "make_env", "register"]
