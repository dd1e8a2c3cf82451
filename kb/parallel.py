"""Run one function in a second process beside the caller's own work, where that is safe.

A build has independent halves (the claims index on one side; the sources index and the arrays
on the other). Python runs one thread of Python code at a time, so the second half goes to a
forked child process, which shares the build's records without copying or pickling them.

Forking is only safe while the process has a single thread: the child gets a copy of the memory
but not the other threads, and a lock one of them held stays held forever in the child. So a
build inside a running server (a rebuild thread beside the web threads) runs both halves in
turn, as does one on a single core or with KB_BUILD_PROCESSES=1. The child dies with its
parent (a killed build leaves no writer behind), and whatever it raised is raised again here.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any


def can_fork() -> bool:
    """Whether a second process may be forked now (see the module's docstring)."""
    if os.environ.get("KB_BUILD_PROCESSES", "").strip() == "1":
        return False
    return ((os.cpu_count() or 1) > 1 and threading.active_count() == 1
            and sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods())


@contextmanager
def beside(function: Callable[..., None], *args: Any, fork: bool | None = None) -> Iterator[None]:
    """Run ``function(*args)`` in a child process while the ``with`` body runs here.

    Leaving the block waits for the child and raises what it raised. Without a second process
    (*fork* False, or None and ``can_fork()`` false) the function runs here after the body.
    """
    if not (can_fork() if fork is None else fork):
        yield
        function(*args)
        return
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run, args=(send, os.getpid(), function, args), daemon=True)
    child.start()
    send.close()
    try:
        yield
    except BaseException:
        child.terminate()
        child.join()
        raise
    try:
        outcome = receive.recv()
    except EOFError:
        child.join()
        raise RuntimeError(f"the build's second process stopped without finishing "
                           f"(exit code {child.exitcode}); run the build again") from None
    finally:
        receive.close()
    child.join()
    if isinstance(outcome, BaseException):
        raise outcome


def _run(send: Connection, parent: int, function: Callable[..., None], args: tuple[Any, ...]) -> None:
    _die_with_parent(parent)
    try:
        function(*args)
        send.send(None)
    except BaseException as error:  # noqa: BLE001 -- all of it goes back to the parent, which raises it
        try:
            send.send(error)
        except Exception:  # noqa: BLE001 -- one that does not pickle goes back as its message
            send.send(RuntimeError(f"{type(error).__name__}: {error}"))
    finally:
        send.close()


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
