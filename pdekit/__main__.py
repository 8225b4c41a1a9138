"""``python -m pdekit``: the pdekit command."""

import sys

from pdekit.cli import main

if __name__ == "__main__":  # importing the module (Sphinx's autosummary does) runs nothing
    sys.exit(main())
