"""File-system helpers shared by the build, the record store and the fetch cache: atomic writes,
file modes and storage errors.

A full disk, a folder without write permission or a read-only mount is the operator's to fix, not
a bug: ``storing`` turns those OSErrors into one ``StorageError`` line naming the path and the fix,
so ``kb build``, ``kb import`` and the server never answer them with a traceback.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kb.errors import StorageError

# errno -> (what happened, what to do about it). Only conditions a user can fix are listed; any
# other OSError is a bug or a hardware fault and keeps its traceback.
_STORAGE_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device while writing {path}", "free some space"),
    errno.EDQUOT: ("disk quota exceeded while writing {path}", "free some space or raise the quota"),
    errno.EFBIG: ("file too large while writing {path} (a file-size limit such as `ulimit -f`)",
                  "raise the limit or write to another file system"),
    errno.EACCES: ("permission denied on {path}", "give this user read and write access to it"),
    errno.EPERM: ("operation not permitted on {path}", "give this user read and write access to it"),
    errno.EROFS: ("{path} is on a read-only file system",
                  "remount it read-write or use a writable --index-dir / --corpus-dir"),
}


def storage_error(error: OSError, path: str | os.PathLike[str] | None, retry: str) -> StorageError | None:
    """The one-line StorageError for *error*, or None when it is not a storage condition.

    *path* is used when the error carries no file name, as a failed ``write`` or ``fsync`` does;
    *retry* is the command to run once fixed, e.g. "kb build".
    """
    known = _STORAGE_ERRORS.get(error.errno or 0)
    if known is None:
        return None
    where = error.filename if error.filename is not None else path
    what, fix = known
    message = f"{what.format(path=os.fsdecode(where) if where is not None else 'a file')}: {fix} "
    message += f"and run {retry} again"
    return StorageError(message, errno_code=error.errno or 0, path=os.fsdecode(where) if where else "")


@contextmanager
def storing(path: str | os.PathLike[str], retry: str) -> Iterator[None]:
    """Raise a StorageError naming *path* (or the failing file) for a storage OSError in the block.

    Nested blocks name the innermost path, so wrap a whole operation once and each write again.
    """
    try:
        yield
    except OSError as error:
        converted = storage_error(error, path, retry)
        if converted is None:
            raise
        raise converted from error


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, and a thread creating a file in between would get
    the wrong mode, so Linux's /proc is asked first.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask: usually 0644).

    ``tempfile.mkstemp`` always makes 0600 files; a file renamed into the corpus or the index must
    be readable like its neighbours, by a web server running as another user and by git.
    """
    return 0o666 & ~current_umask()


def atomic_write(path: Path, text: str, retry: str = "the import") -> None:
    """Replace *path* with *text* so readers see the old file or the new one, never a mix.

    The temporary file sits in the same folder because ``os.replace`` is only atomic within
    one file system; the fsync makes the bytes durable before the name points at them. *retry*
    is what a storage error tells the user to run again once it is fixed.
    """
    with storing(path, retry):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(handle, new_file_mode())  # mkstemp's 0600 would hide it from other users
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
