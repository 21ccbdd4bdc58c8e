"""``python -m digitkit`` (and ``torchrun -m digitkit``) runs the command line."""

import sys

from digitkit.cli import main

sys.exit(main())
