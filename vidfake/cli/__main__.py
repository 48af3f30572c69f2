"""``python -m vidfake.cli``: the same as the ``vidfake`` command."""
import sys

from vidfake.cli import main

sys.exit(main())
