import sys
from pathlib import Path

if not __package__:
    # Run as ``python path/to/bench``: the repository is what holds the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cli import main

sys.exit(main())
