"""The program DSL: programs, their parser, printer, evaluator, mutations and exports."""

if __name__ != "disco_rules.dsl":  # imported as a top-level `dsl` from the repository's root
    raise ImportError(f"import disco_rules.dsl, not {__name__}: the repository's folders are "
                      "the subpackages of disco_rules, and a second copy of their classes "
                      "would not be the same classes")
