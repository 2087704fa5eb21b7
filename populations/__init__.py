"""Rule networks and the evolution strategies that meta-train them."""

if __name__ != "disco_rules.populations":  # imported as a top-level `populations` from the repository's root
    raise ImportError(f"import disco_rules.populations, not {__name__}: the repository's folders are "
                      "the subpackages of disco_rules, and a second copy of their classes "
                      "would not be the same classes")
