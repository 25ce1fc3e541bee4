"""`python -m apps APP VERB [flags]`: the same command line as `i2dl`."""

import sys

from apps.cli import main

sys.exit(main())
