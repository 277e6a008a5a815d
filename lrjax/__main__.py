"""`python -m lrjax ...` is `lrjax ...`."""

import sys

from lrjax.cli import main

if __name__ == "__main__":
  sys.exit(main())
