"""``python -m liquidnode`` is the same as the ``liquidnode`` command."""

import sys

from liquidnode.cli import main

sys.exit(main())
