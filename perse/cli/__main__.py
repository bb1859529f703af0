"""``python -m perse.cli``: the same as the ``perse`` console script."""

import sys

from perse.cli import main

sys.exit(main())
