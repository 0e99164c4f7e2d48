"""Test action: append argv and the environment it got as one JSON line to argv[1]."""

import json
import os
import sys

with open(sys.argv[1], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"argv": sys.argv, "env": dict(os.environ)}) + "\n")
print("recorded")
