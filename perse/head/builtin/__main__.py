"""``python -m perse.head.builtin``: generate the built-in head asset (see `perse.head.builtin.build.main`)."""

import sys

from perse.head.builtin.build import main

sys.exit(main())
