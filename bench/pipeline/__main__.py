"""`python -m bench.pipeline`: the `just bench` run."""

import sys

from bench.pipeline.run import main

sys.exit(main())
