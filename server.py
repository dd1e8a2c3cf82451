"""Web entry point: `python server.py [--host H] [--port P]`.

Builds the index from corpus/ on first start (or when the corpus changed), then serves with
waitress, a production WSGI server. `app` is also importable for other WSGI servers.
"""

from __future__ import annotations

from kb.server import main
from kb.web import create_app

app = create_app()

if __name__ == "__main__":
    raise SystemExit(main())
