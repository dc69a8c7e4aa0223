import sys

from rnnspec.cli import main

sys.exit(main())
