"""Admission control: expensive requests get a bounded share of the server, cheap ones never wait.

Searches and article checks are CPU-bound; waitress gives every request a thread from one pool,
so a burst of them would occupy every thread and leave health checks and page loads queued
behind them for seconds. Instead each kind has its own lane: at most ``settings.search_slots``
searches and ``settings.check_slots`` checks run at once; a few more wait for a slot (searches at
most ``settings.heavy_wait_s``), and beyond that a request is refused at once with 503 and
Retry-After. The thread pool is sized to hold the running and the waiting ones with threads to
spare, so cheap requests always find a free thread. A search takes its slot only when the page
cache does not answer it (KnowledgeBase.search_gate): a cached page never waits for a slot.

One search slot is the default because searching is pure Python holding the GIL: two at once take
as long as two in a row, and every extra one delays the cheap requests' threads (measured by
bench/probes.py: health p50 12 ms with one search slot, 34 ms with two, 69 ms with four, under
8 clients of the most expensive queries; search throughput was highest with one). Checks spend
much of their time in onnxruntime, which releases the GIL, so two may run at once.

Article checks also run at most ``settings.checks_per_client`` at a time per client address: a
client past that gets 429 until one of its checks is done, so one address cannot hold every slot
for the many seconds a long article takes (a rate limit alone counts requests, not their cost).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from kb.config import Settings
from kb.web.errors import error_response

# (rule, method) of the requests that run the checker. Searches need no list: every route that
# searches does so through KnowledgeBase.search, whose gate takes the search slot.
CHECKS = {("/api/v1/check", "POST"), ("/check", "POST")}
RETRY_AFTER_S = 1


class Refused(HTTPException):
    """A request turned away by admission control, answered in the one error shape."""

    def __init__(self, message: str, status: int, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.code = status
        self.message = message
        self.retry_after = retry_after


@dataclass
class Lane:
    """One kind of expensive request: how many run at once, how many may wait, for how long."""

    name: str  # what the refusal says the server is busy with
    slots: int
    queue: int
    wait_s: float
    semaphore: threading.BoundedSemaphore = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0

    def __post_init__(self) -> None:
        self.semaphore = threading.BoundedSemaphore(self.slots)

    def enter(self) -> None:
        """Take a slot, waiting at most ``wait_s`` behind at most ``queue`` others, or raise Refused."""
        busy = Refused(f"The server is busy with other {self.name}: retry in a second or two "
                       f"(Retry-After: {RETRY_AFTER_S}).", 503)
        with self.lock:
            if self.semaphore.acquire(blocking=False):
                return
            if self.waiting >= self.queue:
                raise busy
            self.waiting += 1
        try:
            acquired = self.semaphore.acquire(timeout=self.wait_s)
        finally:
            with self.lock:
                self.waiting -= 1
        if not acquired:
            raise busy

    def leave(self) -> None:
        self.semaphore.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A slot for the duration of the block (enter() and leave())."""
        self.enter()
        try:
            yield
        finally:
            self.leave()


@dataclass
class Admission:
    """The two lanes, and the checks in flight per client address."""

    searches: Lane
    checks: Lane
    checks_per_client: int = 2  # 0: no per-client bound
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: Counter[str] = field(default_factory=Counter)  # client -> checks in flight

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(Lane("searches", settings.search_slots, settings.heavy_queue, settings.heavy_wait_s),
                   # a check waits at most as long as one check may run
                   Lane("article checks", settings.check_slots, settings.check_queue,
                        max(settings.heavy_wait_s, settings.check_time_budget_s)),
                   settings.checks_per_client)

    def enter(self, client: str, is_check: bool) -> None:
        """Take a slot or raise Refused; every successful enter() needs one leave()."""
        if not is_check:
            self.searches.enter()
            return
        with self.lock:
            if self.checks_per_client and self.running[client] >= self.checks_per_client:
                raise Refused(f"{self.running[client]} article checks from your address are still "
                              "running: wait for their reports, then send the next one.", 429,
                              retry_after=5)
            self.running[client] += 1
        try:
            self.checks.enter()
        except BaseException:
            self._done(client)
            raise

    def _done(self, client: str) -> None:
        with self.lock:
            self.running[client] -= 1
            if self.running[client] <= 0:
                del self.running[client]

    def leave(self, client: str, is_check: bool) -> None:
        if is_check:
            self.checks.leave()
            self._done(client)
        else:
            self.searches.leave()


def threads_needed(settings: Settings, spare: int = 4) -> int:
    """Waitress threads for running and waiting expensive requests plus *spare* for cheap ones."""
    return (settings.search_slots + settings.heavy_queue + settings.check_slots
            + settings.check_queue + spare)




def install_admission(app: Flask, settings: Settings) -> Admission | None:
    """Bound the searches and checks in flight; None when a lane has 0 slots (no bound)."""
    if settings.search_slots <= 0 or settings.check_slots <= 0:
        return None
    admission = Admission.from_settings(settings)
    app.extensions["kb_admission"] = admission
    # Searches take their slot only when the page cache does not answer them: a cached page
    # costs a dictionary look-up and never waits behind a search that is running.
    app_state = app.extensions["kb_state"]
    app_state.search_gate = admission.searches.slot
    if app_state.kb is not None:
        app_state.kb.search_gate = admission.searches.slot

    @app.before_request
    def admit() -> None:
        if request.url_rule is None or (request.url_rule.rule, request.method) not in CHECKS:
            return
        client = request.remote_addr or ""
        admission.enter(client, True)
        g.admitted = (client, True)

    @app.teardown_request
    def release(error: BaseException | None) -> None:
        admitted = g.pop("admitted", None)
        if admitted is not None:
            admission.leave(*admitted)

    @app.errorhandler(Refused)
    def refused(error: Refused) -> tuple[Response | str, int, dict[str, str]]:
        body, status = error_response(error.message, error.code or 503)
        return body, status, {"Retry-After": str(error.retry_after)}

    return admission
