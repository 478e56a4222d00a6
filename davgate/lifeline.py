"""Every process davgate starts ends when its parent ends, however the parent ends.

A supervisor killed with SIGKILL (or by the OOM killer) runs no handler, so
its workers would live on, adopted by init, holding the listening socket and
serving with the configuration they were started with. Two ways to tie a
child to its parent, chosen by who started it:

- :func:`die_with_parent` for a child forked by a process's main thread (the
  supervisor's workers, the recovery child): Linux's ``PR_SET_PDEATHSIG``
  sends it SIGKILL when that thread ends, which is when the process ends.
- :func:`exit_with_parent` for a child started from a request thread (the
  DISPEL pipeline processes) or by another engine (granian's workers):
  ``PR_SET_PDEATHSIG`` follows the *thread* that started it, so a thread
  of the child's own waits on a pidfd of the parent process instead.

Both first check that the parent is still the one expected: it may have
died before the call, and then the child has been adopted already.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHANED = 1  # exit code of a child whose parent was already gone


def die_with_parent(parent: int) -> None:
    """In a child forked by ``parent``'s main thread: SIGKILL when the parent ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(ORPHANED)


def exit_with_parent(parent: int) -> None:
    """In a child of ``parent``: a thread exits this process as soon as the parent ends."""
    try:
        pidfd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(ORPHANED)
    if os.getppid() != parent:  # the pid was reused by another process
        os._exit(ORPHANED)
    threading.Thread(target=_exit_when_readable, args=(pidfd,), name="davgate-lifeline", daemon=True).start()


def _exit_when_readable(pidfd: int) -> None:
    select.select([pidfd], [], [])  # a pidfd becomes readable when its process ends
    os._exit(ORPHANED)
