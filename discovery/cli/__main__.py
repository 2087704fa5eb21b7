"""`python -m disco_rules.discovery.cli`: the `disco` command."""

import sys

from disco_rules.discovery.cli.main import main

sys.exit(main())
