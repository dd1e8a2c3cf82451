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
    search_cache_size: int = 2048  # search pages kept per build; 0 disables the cache
    # Store sentence embeddings at build time (the encoder in kb/models/encoder); KB_SEMANTIC=0
    # makes lexical-only builds, as does an install without the encoder's files.
    semantic: bool = True
    # Verdicts from the trained verifier (kb/models/verifier); False (KB_VERIFIER=0) falls back to
    # the lexical rules of kb.check.verdict, as does an install without the model files.
    verifier: bool = True

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
            search_cache_size=int(environ.get("KB_SEARCH_CACHE", defaults.search_cache_size)),
            semantic=environ.get("KB_SEMANTIC", "1").strip().lower() not in {"0", "false", "no", "off"},
            verifier=environ.get("KB_VERIFIER", "1").strip().lower() not in {"0", "false", "no", "off"},
        )

    def with_dirs(self, corpus_dir: Path | None = None, index_dir: Path | None = None) -> Settings:
        """Return a copy pointing at another corpus and/or index folder."""
        return replace(
            self,
            corpus_dir=corpus_dir or self.corpus_dir,
            index_dir=index_dir or self.index_dir,
        )
