"""``python -m reid_uda_lib.data.synthetic --out DIR [...]`` (the generator's command line)."""
import sys

from .generator import main

sys.exit(main())
