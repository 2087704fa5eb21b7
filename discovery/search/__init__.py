"""The search: one engine (`engine.Engine`) drives any population kind (`kinds.KINDS`):
regularized evolution over programs (`programs`) or an evosax strategy over networks
(`networks`). Import the modules themselves; this package imports nothing, so that the
registry of kinds stays cheap to read."""
