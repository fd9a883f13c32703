"""``python -m core.cli``: the ``univers`` command."""

import sys

from core.cli import main

sys.exit(main())
