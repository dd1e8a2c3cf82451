"""Settings: everything the library, the CLI and the web app need to know, built once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

# The repository root when running from a checkout; the bundled corpus lives beside kb/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the knowledge base lives and how it behaves."""

    corpus_dir: Path
    index_dir: Path
    page_size: int = 20
    max_page_size: int = 100
    max_query_chars: int = 1000
    max_upload_bytes: int = 200 * 1024  # article checker input limit
    api_token: str = ""  # enables write endpoints when set
    contact_email: str = ""  # sent in the User-Agent to literature services
    ncbi_api_key: str = ""
    crossref_url: str = "https://api.crossref.org"
    pubmed_url: str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    openalex_url: str = "https://api.openalex.org"
    cache_dir: Path | None = None  # on-disk cache of raw service responses
    check_rate_limit: str = "30 per minute"  # article checker, per client address
    # Searches per client address (the API and the /search page share one bucket); "" turns it off.
    search_rate_limit: str = "120 per minute"
    # The article checker's work per request: sentences checked, reference entries looked up, and
    # seconds spent before it answers with what it has (marked truncated); 0 means no cap.
    max_check_units: int = 500
    max_check_references: int = 300
    check_time_budget_s: float = 10.0
    # waitress: seconds a connection may sit idle or stall mid-upload before it is closed, and the
    # seconds SIGTERM waits for in-flight requests before the server exits.
    channel_timeout_s: int = 30
    shutdown_grace_s: float = 10.0
    # Admission control (kb/web/admission.py): searches and checks running at once, how many may
    # wait for a slot (searches at most heavy_wait_s) before a 503, checks per client address.
    search_slots: int = 1
    heavy_queue: int = 8
    heavy_wait_s: float = 2.0
    check_slots: int = 2
    check_queue: int = 2
    checks_per_client: int = 2
    search_cache_size: int = 2048  # search pages kept per build; 0 disables the cache
    # Seconds a search may spend matching before it answers with what it has, marked partial.
    search_time_budget_s: float = 1.0
    # Store sentence embeddings at build time (the encoder in kb/models/encoder); KB_SEMANTIC=0
    # makes lexical-only builds, as does an install without the encoder's files.
    semantic: bool = True
    # Verdicts from the trained verifier (kb/models/verifier); False (KB_VERIFIER=0) falls back to
    # the lexical rules of kb.check.verdict, as does an install without the model files.
    verifier: bool = True
    # Where builds are written and served from: "" is the embedded engine in index_dir; a
    # postgresql:// URL (KB_ENGINE, --engine) builds into and serves from that database.
    engine: str = ""

    @classmethod
    def from_env(cls, root: Path | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read KB_* environment variables; default to ROOT/corpus and ROOT/index."""
        root = root or PROJECT_ROOT
        corpus_dir = Path(environ.get("KB_CORPUS_DIR", root / "corpus"))
        index_dir = Path(environ.get("KB_INDEX_DIR", root / "index"))
        defaults = cls(corpus_dir=corpus_dir, index_dir=index_dir)
        cache = environ.get("KB_CACHE_DIR")
        return replace(
            defaults,
            page_size=int(environ.get("KB_PAGE_SIZE", defaults.page_size)),
            api_token=environ.get("KB_API_TOKEN", ""),
            contact_email=environ.get("KB_CONTACT_EMAIL", ""),
            ncbi_api_key=environ.get("KB_NCBI_API_KEY", ""),
            crossref_url=environ.get("KB_CROSSREF_URL", defaults.crossref_url),
            pubmed_url=environ.get("KB_PUBMED_URL", defaults.pubmed_url),
            openalex_url=environ.get("KB_OPENALEX_URL", defaults.openalex_url),
            cache_dir=Path(cache) if cache else None,
            check_rate_limit=environ.get("KB_CHECK_RATE_LIMIT", defaults.check_rate_limit),
            search_rate_limit=environ.get("KB_SEARCH_RATE_LIMIT", defaults.search_rate_limit),
            max_check_units=int(environ.get("KB_MAX_CHECK_UNITS", defaults.max_check_units)),
            max_check_references=int(environ.get("KB_MAX_CHECK_REFERENCES",
                                                 defaults.max_check_references)),
            check_time_budget_s=float(environ.get("KB_CHECK_TIME_BUDGET", defaults.check_time_budget_s)),
            channel_timeout_s=int(environ.get("KB_CHANNEL_TIMEOUT", defaults.channel_timeout_s)),
            shutdown_grace_s=float(environ.get("KB_SHUTDOWN_GRACE", defaults.shutdown_grace_s)),
            search_slots=int(environ.get("KB_SEARCH_SLOTS", defaults.search_slots)),
            heavy_queue=int(environ.get("KB_HEAVY_QUEUE", defaults.heavy_queue)),
            heavy_wait_s=float(environ.get("KB_HEAVY_WAIT", defaults.heavy_wait_s)),
            check_slots=int(environ.get("KB_CHECK_SLOTS", defaults.check_slots)),
            check_queue=int(environ.get("KB_CHECK_QUEUE", defaults.check_queue)),
            checks_per_client=int(environ.get("KB_CHECKS_PER_CLIENT", defaults.checks_per_client)),
            search_cache_size=int(environ.get("KB_SEARCH_CACHE", defaults.search_cache_size)),
            search_time_budget_s=float(environ.get("KB_SEARCH_TIME_BUDGET", defaults.search_time_budget_s)),
            semantic=environ.get("KB_SEMANTIC", "1").strip().lower() not in {"0", "false", "no", "off"},
            engine=environ.get("KB_ENGINE", "").strip(),
            verifier=environ.get("KB_VERIFIER", "1").strip().lower() not in {"0", "false", "no", "off"},
        )

    def for_folders(self, corpus_dir: Path | None, index_dir: Path | None) -> Settings:
        """The copy the command line asks for (``--corpus-dir``, ``--index-dir``).

        Each corpus gets its own index beside it unless one is named: corpus/ -> index/,
        my-kb/ -> my-kb-index/, so two knowledge bases never share a build.
        """
        if corpus_dir is not None and index_dir is None:
            name = "index" if corpus_dir.name == "corpus" else f"{corpus_dir.name}-index"
            index_dir = corpus_dir.parent / name
        return self.with_dirs(corpus_dir, index_dir)

    def with_dirs(self, corpus_dir: Path | None = None, index_dir: Path | None = None) -> Settings:
        """Return a copy pointing at another corpus and/or index folder."""
        return replace(
            self,
            corpus_dir=corpus_dir or self.corpus_dir,
            index_dir=index_dir or self.index_dir,
        )
