"""kb.parallel.beside: a build's second half in a forked process, and when it must not fork."""

import errno
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from kb import parallel

# The tests fork explicitly (fork=True): whether a build may fork on its own depends on the
# threads other tests leave running, which the last test covers.
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks a Linux process")


def _write_pid(path: Path) -> None:
    path.write_text(str(os.getpid()))


def _fail(code: int) -> None:
    raise OSError(code, os.strerror(code))


def _die(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@linux
def test_the_function_runs_in_another_process_while_the_body_runs(tmp_path: Path):
    marker = tmp_path / "pid"
    with parallel.beside(_write_pid, marker, fork=True):
        here = os.getpid()
    assert int(marker.read_text()) != here  # finished by the time the block is left


@linux
def test_what_the_child_raises_is_raised_here_with_its_errno():
    with pytest.raises(OSError) as caught, parallel.beside(_fail, errno.ENOSPC, fork=True):
        pass
    assert caught.value.errno == errno.ENOSPC


@linux
def test_a_child_that_dies_is_an_error_that_says_to_build_again():
    with pytest.raises(RuntimeError, match="run the build again"), \
            parallel.beside(_die, None, fork=True):
        pass


def test_with_other_threads_running_it_runs_here_after_the_body(tmp_path: Path):
    marker = tmp_path / "pid"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with parallel.beside(_write_pid, marker):
            assert not marker.exists()  # not started yet: it runs after the body
        assert int(marker.read_text()) == os.getpid()
    finally:
        stop.set()
        other.join()


@linux
def test_an_error_in_the_body_stops_the_child(tmp_path: Path):
    with pytest.raises(ValueError), parallel.beside(_write_pid, tmp_path / "pid", fork=True):
        raise ValueError("the claims index failed")
