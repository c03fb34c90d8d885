"""Generate the synthetic two-domain dataset (thin wrapper; same options as
``python -m reid_uda_lib.data.synthetic``)::

    python data_scripts/make_synthetic.py --out data/synthetic [--seed 0] [--gap 1.0] [--overwrite]
"""
from __future__ import annotations

import sys

from reid_uda_lib.data.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
