"""``python -m controller`` is the same as the ``liquidnode`` command."""

import sys

from controller.cli import main

sys.exit(main())
