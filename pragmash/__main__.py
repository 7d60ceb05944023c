"""`python -m pragmash` runs the command line, as the installed `pragmash` script does."""

from __future__ import annotations

import sys

from pragmash.ui.cli.main import main

sys.exit(main())
