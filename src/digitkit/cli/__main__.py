import sys

from digitkit.cli import main

sys.exit(main())
