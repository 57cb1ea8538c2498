"""``python -m torchgeo_stars``: the same as the ``torchgeo-stars`` command."""

import sys

from .main import main

sys.exit(main())
