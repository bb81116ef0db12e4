"""A module that takes long to import (for signals during start-up)."""

import sys
import time

print("app: importing", file=sys.stderr, flush=True)
time.sleep(30)
