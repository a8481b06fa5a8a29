"""`python -m alien_ros.demo`: the same as scripts/demo."""

import sys

from alien_ros.demo.story import main

sys.exit(main())
