"""`python -m alien`: the alien command line."""

import sys

from alien.cli import main

sys.exit(main())
