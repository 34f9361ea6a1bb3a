import sys

from mmrphys.cli.main import main

sys.exit(main())
