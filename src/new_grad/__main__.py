"""``python -m new_grad`` is the ``new-grad`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
