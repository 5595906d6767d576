"""``python -m pytest_forgetting``: the :mod:`pytest_forgetting.cli` command."""

import sys

from pytest_forgetting.cli import main

sys.exit(main())
