"""``python -m pdekit``: the pdekit command."""

import sys

from pdekit.cli import main

sys.exit(main())
