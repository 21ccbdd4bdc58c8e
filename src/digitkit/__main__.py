"""``python -m digitkit`` (and ``torchrun -m digitkit``) runs the command line."""

import os
import sys

from digitkit.cli import main

if "LOCAL_RANK" in os.environ:  # under torchrun: let it record an uncaught error for its failure report
    from torch.distributed.elastic.multiprocessing.errors import record

    main = record(main)
sys.exit(main())
