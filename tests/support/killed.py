"""A writer in a subprocess, killed with SIGKILL at a random moment: what the state files must survive."""

from __future__ import annotations

import random
import subprocess
import sys
import time

# The module under test, loaded from its file into `module`, in `python -S` (no site-packages);
# argv[1] is the file, the writer's own arguments follow.
_PRELUDE = r"""
import importlib.util, json, os, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("module_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
"""


def kill_while_writing(writer: str, module_file: str, *args: str, rng: random.Random) -> tuple[list[int], int]:
    """Run `writer` after the prelude; once it prints "ready", wait 0-12 ms and kill it. Returns the numbers
    it printed after "ready" (the writes it finished, one per line) and its return code."""
    proc = subprocess.Popen([sys.executable, "-S", "-c", _PRELUDE + writer, module_file, *args],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(rng.uniform(0.0, 0.012))
    proc.kill()
    output, _ = proc.communicate()
    return [int(line) for line in output.split()], proc.returncode
