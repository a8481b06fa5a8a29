"""`python -m alien_demo`: the same as scripts/demo."""

import sys

from alien_demo.story import main

sys.exit(main())
