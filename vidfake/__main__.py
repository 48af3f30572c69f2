import sys

from vidfake.cli import main

sys.exit(main())
