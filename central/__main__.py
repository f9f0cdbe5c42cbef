"""`python -m central` is `roadwatch-central`."""

import sys

from central.cli import main

sys.exit(main())
