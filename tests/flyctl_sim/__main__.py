"""``python -m flyctl_sim ARGS``: the same as running ``bin/flyctl ARGS``."""

import sys

from flyctl_sim.cli import main

sys.exit(main())
