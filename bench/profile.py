"""Where davgate spends its time under load: py-spy on every davgate process.

Run with ``bench/run.sh --profile``: after a phase's measured rounds, the
same load runs once more, unmeasured, while ``py-spy record --gil`` samples
the davgate process tree. Only the thread holding the GIL is sampled: in a
GIL-bound server that is where the CPU goes (a thread sampled without the
GIL is mostly waiting to get it back after a system call). Threads waiting
for work are left out. The raw collapsed stacks are kept; the summary lists
the functions with the most samples on top of the stack (self) and
anywhere in it (inclusive).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.procs import BenchError, Server

PY_SPY = Path(__file__).resolve().parent / ".venv-stock" / "bin" / "py-spy"
FRAME_LINE = re.compile(r":\d+\)$")
SITE = re.compile(r"^.*/(site-packages|lib/python3\.\d+)/")
TOP = 15
#: Leaf functions of a thread that waits (for a connection, a request, a child): not work.
WAITING = {
    "wait (threading.py)", "get (queue.py)", "select (selectors.py)", "accept (socket.py)",
    "sleep (time)", "_wait_for_tstate_lock (threading.py)", "waitpid (posix)",
}  # fmt: skip


def record(server: Server, load: Callable[[], None], seconds: int, raw: Path) -> dict[str, list[tuple[str, float]]]:
    """Profile ``server`` while ``load()`` runs; returns the summary."""
    if not PY_SPY.exists():
        raise BenchError(f"{PY_SPY} is missing: run bash scripts/setup.sh --bench")
    command = [
        str(PY_SPY), "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking", "--gil",
        "--rate", "250", "--duration", str(seconds + 2), "--format", "raw", "--output", str(raw),
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # attach
    try:
        load()
    finally:
        _, errors = spy.communicate(timeout=seconds + 60)
    if not raw.exists():
        raise BenchError(f"py-spy wrote no profile ({spy.returncode}): {errors.strip()[-1000:]}")
    return summarize(raw.read_text())


def summarize(collapsed: str) -> dict[str, list[tuple[str, float]]]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [name(frame) for frame in stack.split(";") if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        if waiting(frames[-1]):
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        packages[package(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / max(total, 1), 1)) for frame, n in counter.most_common(TOP)]

    samples = [("working", float(total)), ("waiting", float(idle))]
    return {
        "samples": samples, "self_by_package_percent": share(packages),
        "self_percent": share(own), "inclusive_percent": share(inclusive),
    }  # fmt: skip


def package(frame: str) -> str:
    """Who owns a frame: its top-level package (davgate, wsgidav, cheroot, ...) or the standard library."""
    path = frame.partition(" (")[2].rstrip(")")
    top = path.split("/", 1)[0].removesuffix(".py")
    return "standard library" if path.startswith("<") or top in sys.stdlib_module_names else top


def waiting(frame: str) -> bool:
    """``Condition.wait (threading.py)`` and the like: a thread with nothing to do."""
    method = frame.split(".", 1)[-1] if "." in frame.split(" (", 1)[0] else frame
    return method in WAITING or frame in WAITING


def name(frame: str) -> str:
    """``function (path/to/module.py:123)`` → ``function (module.py)``, package-relative."""
    frame = FRAME_LINE.sub(")", frame)
    head, _, path = frame.partition(" (")
    return f"{head} ({SITE.sub('', path)}" if path else head


def text(title: str, summary: dict[str, list[tuple[str, float]]]) -> str:
    counts = dict(summary["samples"])
    lines = [f"{title}: {counts['working']:.0f} samples at work ({counts['waiting']:.0f} waiting, left out)"]
    lines.append(
        "  self % by package: "
        + ", ".join(f"{who} {pct:.0f}" for who, pct in summary.get("self_by_package_percent", []))
    )
    lines.append("  self %:")
    lines += [f"    {pct:5.1f}  {frame}" for frame, pct in summary["self_percent"]]
    lines.append("  inclusive %:")
    lines += [f"    {pct:5.1f}  {frame}" for frame, pct in summary["inclusive_percent"]]
    return "\n".join(lines)
