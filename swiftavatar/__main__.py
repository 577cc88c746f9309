import sys

from swiftavatar.cli import main

sys.exit(main())
