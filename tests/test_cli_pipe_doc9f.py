"""A reader that stops reading (`gridkit … | head`) ends the command quietly, as Unix tools do."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_closed_pipe_is_no_unexpected_error(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GRIDKIT_HOME": str(tmp_path), "GRIDKIT_LANG": "en"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "settings"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # as `head` does once it has its lines: the command's first write finds no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert stderr == "", stderr  # no traceback, no "unexpected error", no "Exception ignored" at exit
