"""`python -m i2dl_keras.apps APP VERB [flags]`: the same command line as `i2dl`."""

import sys

from i2dl_keras.apps.cli import main

sys.exit(main())
