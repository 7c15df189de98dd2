"""Child processes of the benchmarks: start one, read its JSON progress lines, and the child's side.

The load and scale benchmarks measure in new Python processes (a fresh peak RSS, a cold start, no
model shared with the caller). A child writes one JSON object a line to its stdout:
``{"progress": [done, total, message]}`` as it goes, then ``{"result": ...}``; everything else it
says goes to stderr, which the caller keeps in a log file.

>>> env = child_env(drop=("AROLWG_AUTH",))
>>> env["HF_HUB_OFFLINE"], "AROLWG_AUTH" in env
('1', False)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent
LOG_TAIL_CHARS = 3000  # how much of a failed child's log its error quotes

Progress = Callable[[int, int, str], None]

# Every child runs offline and quiet, whatever the caller's environment says.
_CHILD_SETTINGS = (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("ANONYMIZED_TELEMETRY", "False"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("GRADIO_ANALYTICS_ENABLED", "False"),
    ("TOKENIZERS_PARALLELISM", "false"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ("TRANSFORMERS_VERBOSITY", "error"),
)


def child_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a benchmark's child: this one without ``drop``, offline, no telemetry,
    and this checkout's code."""
    dropped = set(drop)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(_CHILD_SETTINGS)
    if (REPO_DIR / "pyproject.toml").exists():  # a source checkout: the children import this copy
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def run_child(
    args: Sequence[str], log_path: Path, progress: Progress | None, *, what: str, drop: Iterable[str] = ()
) -> tuple[object, float]:
    """Run ``python ARGS``, passing its progress lines on; (its result, the wall-clock time it started).

    Its stderr is appended to ``log_path``. RuntimeError naming ``what`` (with the log's tail) when
    it fails or sends no result.
    """
    cmd = [sys.executable, *args]
    result = None
    got_result = False
    with log_path.open("ab") as err:
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=child_env(drop), text=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    log.debug("%s: %s", what, line.rstrip())
                    continue
                if not isinstance(msg, dict):
                    continue
                if "progress" in msg and progress:
                    progress(*msg["progress"])
                elif "result" in msg:
                    result, got_result = msg["result"], True
            proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: stop the process we started
                proc.kill()
                proc.wait()
    if proc.returncode != 0 or not got_result:
        tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return result, started


class Channel:
    """The child's side: its real stdout carries the protocol alone; whatever a library prints goes to stderr."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def progress(self, done: int, total: int, message: str) -> None:
        """Tell the caller how far the child is."""
        self._out.write(json.dumps({"progress": [done, total, message]}) + "\n")

    def send_result(self, value: object) -> None:
        """Send the child's result (anything JSON can hold) and close the channel."""
        self._out.write(json.dumps({"result": value}) + "\n")
        self._out.close()
