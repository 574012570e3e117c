"""``python -m training.simulate``: the command line in :mod:`training.simulate.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
