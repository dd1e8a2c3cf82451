"""Operational endpoints: health for load balancers and operators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify

from kb.web.state import knowledge_base

bp = Blueprint("ops", __name__)

OPENAPI_PATHS: dict[str, dict[str, object]] = {
    "/api/v1/health": {
        "get": {
            "summary": "Liveness and index freshness",
            "description": "Whether the service can answer, the age of the served index and its counts.",
            "operationId": "health",
            "responses": {
                "200": {
                    "description": "The service is up and serving an index.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["ok", "index_age_seconds", "counts", "build"],
                        "properties": {
                            "ok": {"type": "boolean", "enum": [True]},
                            "index_age_seconds": {"type": "number", "minimum": 0},
                            "built_at": {"type": "string"},
                            "build": {"type": "string"},
                            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                        },
                    }}},
                },
                "503": {"$ref": "#/components/responses/Error"},
            },
        }
    }
}


@bp.get("/health")
def health() -> Response:
    """Report that the service answers, and how old the served index is."""
    kb = knowledge_base()
    manifest = kb.status()
    built = datetime.fromisoformat(manifest["built_at"])
    age = max(0.0, (datetime.now(UTC) - built).total_seconds())
    response = jsonify({"ok": True, "index_age_seconds": round(age, 1),
                        "built_at": manifest["built_at"], "build": manifest["build"],
                        "counts": manifest["counts"]})
    response.headers["Cache-Control"] = "no-store"  # a health answer is only true now
    return response
