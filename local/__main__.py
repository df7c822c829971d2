"""The local platform in containers (stack ``local``); see components/local/containers.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.local.containers import main

main()
