"""disco: a distributed evolutionary engine that discovers learning algorithms.

The repository's folders `dsl/`, `populations/`, `discovery/` and `cluster/` install as the
subpackages `disco_rules.dsl`, `disco_rules.populations`, `disco_rules.discovery` and
`disco_rules.cluster`.
"""

__version__ = "0.2.0"
