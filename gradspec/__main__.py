"""``python -m gradspec``: the same command line as ``gradspec``."""

from gradspec._cli import main

raise SystemExit(main())
