"""The search: configs, tasks, inner training, populations of rules, the run store and CLI."""

if __name__ != "disco_rules.discovery":  # imported as a top-level `discovery` from the repository's root
    raise ImportError(f"import disco_rules.discovery, not {__name__}: the repository's folders are "
                      "the subpackages of disco_rules, and a second copy of their classes "
                      "would not be the same classes")
