"""The one HTTP client Evidence KB talks to literature services with.

One ``requests`` session (connection reuse), connect and read timeouts, retries with exponential
backoff on 429, 5xx and broken connections (honouring ``Retry-After``), a User-Agent carrying the
operator's contact address (Crossref and NCBI ask for one), a per-service request-rate limit
(NCBI allows 3 requests/s, 10 with an API key), and an on-disk cache of raw responses so the
same record is never fetched twice.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

from kb import __version__
from kb.config import Settings
from kb.errors import FetchError, NotFound
from kb.files import atomic_write

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Parameters that identify the caller rather than the record; left out of cache keys.
_PRIVATE_PARAMS = frozenset({"api_key", "email", "tool", "mailto"})


class RateLimiter:
    """At most *per_second* requests per second, spaced evenly; safe across threads."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self) -> None:
        """Block until the next request may go."""
        with self._lock:
            now = self._clock()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            self._sleep(delay)


class HttpClient:
    """GET text from a service with retries, backoff, rate limits and a response cache."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, retries: int = 4, backoff: float = 0.5,
                 max_wait: float = 60.0, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait  # the longest Retry-After we honour before giving up
        self.sleep = sleep
        self.session = session or requests.Session()
        contact = settings.contact_email
        self.session.headers["User-Agent"] = (
            f"EvidenceKB/{__version__} (mailto:{contact})" if contact
            else f"EvidenceKB/{__version__} (contact address not configured: set KB_CONTACT_EMAIL)")
        self.limiters: dict[str, RateLimiter] = {}

    def limit(self, service: str, per_second: float) -> None:
        """Cap requests to *service* at *per_second*."""
        self.limiters[service] = RateLimiter(per_second, sleep=self.sleep)

    def get_text(self, service: str, url: str, params: Mapping[str, str] | None = None,
                 validate: Callable[[str], None] | None = None, what: str = "") -> str:
        """The body of a successful GET, from the cache when it holds one.

        *validate* raises ValueError on a body that is not what the service should send
        (truncated or malformed); such a body is neither cached nor returned. Raise NotFound on
        404 and FetchError when the service stays unreachable after the retries.
        """
        what = what or url
        cache = self._cache_path(service, url, params)
        if cache is not None and cache.is_file():
            text = cache.read_text(encoding="utf-8")
            try:
                if validate:
                    validate(text)
                return text
            except ValueError:
                cache.unlink(missing_ok=True)  # a bad cached body is refetched, not trusted
        text = self._get(service, url, params, what)
        if validate:
            try:
                validate(text)
            except ValueError as error:
                raise FetchError(f"{service} sent a malformed response for {what} ({error}); "
                                 "try again later") from None
        if cache is not None:
            atomic_write(cache, text)
        return text

    def _get(self, service: str, url: str, params: Mapping[str, str] | None, what: str) -> str:
        last = ""
        for attempt in range(self.retries + 1):
            limiter = self.limiters.get(service)
            if limiter:
                limiter.wait()
            wait = self.backoff * (2 ** attempt)
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except requests.Timeout:
                last = f"no answer within {self.timeout[1]:g} s"
            except requests.RequestException as error:
                last = f"connection failed ({type(error).__name__})"
            else:
                if response.status_code == 200:
                    return response.text
                if response.status_code == 404:
                    raise NotFound(f"{service} has no record for {what} (HTTP 404); check the "
                                   "identifier")
                if response.status_code not in RETRY_STATUSES:
                    raise FetchError(f"{service} refused the request for {what} (HTTP "
                                     f"{response.status_code}): {response.text[:200].strip()}")
                last = f"HTTP {response.status_code}"
                after = retry_after(response.headers.get("Retry-After"))
                if after is not None:
                    if after > self.max_wait:
                        raise FetchError(f"{service} asks us to wait {after:.0f} s before "
                                         f"retrying {what}; try again later")
                    wait = max(wait, after)
            if attempt < self.retries:
                self.sleep(min(wait, self.max_wait))
        raise FetchError(f"{service} is unavailable for {what} after {self.retries + 1} attempts "
                         f"(last: {last}); try again later")

    def _cache_path(self, service: str, url: str, params: Mapping[str, str] | None) -> Path | None:
        if self.settings.cache_dir is None:
            return None
        public = sorted((k, v) for k, v in (params or {}).items() if k not in _PRIVATE_PARAMS)
        digest = hashlib.sha256(repr((url, public)).encode("utf-8")).hexdigest()[:32]
        return self.settings.cache_dir / service / f"{digest}.txt"


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), or None.

    >>> retry_after("2"), retry_after(None), retry_after("soon")
    (2.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
