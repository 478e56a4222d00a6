"""Run work in a forked child process, as if it ran here: its result is its exception or none.

For work whose leftovers should not stay in this process: the clients,
connections and heap that the mounts build while they recover at start
would otherwise stay in the supervisor for good, and be copied into every
worker it forks. The child's exception is sent back pickled and raised
here; one that cannot be pickled arrives as a :class:`ChildFailed` with
its text.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

from davgate.lifeline import die_with_parent


class ChildFailed(RuntimeError):
    """The child failed with an exception that could not come back as itself."""


def run_in_child(work: Callable[..., Any], *args: Any) -> None:
    """Call ``work(*args)`` in a forked child; raise its exception here, if it raised one."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        die_with_parent(parent)
        os.close(read_end)
        failure: BaseException | None = None
        try:
            work(*args)
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            failure = error
        with os.fdopen(write_end, "wb") as out:
            try:
                out.write(pickle.dumps(failure))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                out.write(pickle.dumps(ChildFailed(f"{type(failure).__name__}: {failure}")))
        sys.stderr.flush()  # log records are written as they come; no logging.shutdown(): a lock
        os._exit(0)  # another thread held at fork time would never be released here
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        data = answer.read()
    _, status = os.waitpid(pid, 0)
    try:
        failure = pickle.loads(data) if data else ChildFailed(f"the child ended without an answer (status {status})")
    except Exception as error:  # noqa: BLE001 - an exception that does not unpickle
        failure = ChildFailed(f"the child failed, and its exception could not be read back: {error}")
    if failure is not None:
        raise failure
