"""One exception hierarchy: every error a user can cause knows its HTTP status and says what to do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.models import CorpusProblem


class KBError(Exception):
    """Base for errors a user can cause or fix; ``str(error)`` is shown to them verbatim."""

    status = 500
    exit_code = 1  # CLI exit status: 2 for usage and input errors, 1 for failures

    def __init__(self, *args: object, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(*args)
        # HTTP headers the answer must carry (WWW-Authenticate with a 401, Retry-After with a 503):
        # the error knows what the client needs to recover, the web layer only sends it.
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(KBError):
    """The request or its input is wrong; the message says how to fix it."""

    status = 400
    exit_code = 2


class BadQuery(BadRequest):
    """A search query that cannot be run as typed."""


class NotFound(KBError):
    status = 404
    exit_code = 2


class PayloadTooLarge(KBError):
    status = 413
    exit_code = 2


class Unauthorized(KBError):
    status = 401
    exit_code = 2


class Busy(KBError):
    """The server could not do any of the work within its time budget; retry later."""

    status = 503


class IndexUnavailable(KBError):
    """No usable index: missing, built by another schema version, or being replaced."""

    status = 503


class StorageError(KBError):
    """The file system refused a write: full disk, no permission, read-only mount, size limit.

    Built by ``kb.files.storing`` from the OSError; the message names the path and the fix.
    """

    status = 500
    exit_code = 1

    def __init__(self, message: str, errno_code: int = 0, path: str = "") -> None:
        super().__init__(message)
        self.errno_code, self.path = errno_code, path


class CorpusError(KBError):
    """The corpus has errors; ``problems`` lists each as file:line: message."""

    status = 500
    exit_code = 1

    def __init__(self, problems: Sequence[CorpusProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the corpus:\n{lines}{more}")


class IngestError(KBError):
    """An input file or record could not be read; the message starts with 'path:line:'."""

    status = 422
    exit_code = 2

    def __init__(self, path: str, line: int | None, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path, self.line, self.reason = path, line, message


class FetchError(KBError):
    """A literature service could not give us a record (unknown id, service down)."""

    status = 502
