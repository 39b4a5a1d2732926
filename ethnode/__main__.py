"""``python -m ethnode`` is ``ethnode-fast``."""

import sys

from ethnode.cli import main

sys.exit(main())
