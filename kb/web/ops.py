"""Operational endpoints: health for load balancers and operators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify

from kb.web.state import state

bp = Blueprint("ops", __name__)

OPENAPI_PATHS: dict[str, dict[str, object]] = {
    "/api/v1/health": {
        "get": {
            "summary": "Liveness, index freshness and integrity",
            "description": "Whether the service can answer, the age of the served index and its "
                           "counts. status is \"degraded\" (still 200: the service answers) when "
                           "the build index/CURRENT names is damaged and an earlier intact build "
                           "is served instead; degraded says which build, which file and what is "
                           "wrong. 503 when no intact build exists.",
            "operationId": "health",
            "responses": {
                "200": {
                    "description": "The service is up and serving an index.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["ok", "status", "index_age_seconds", "counts", "build"],
                        "properties": {
                            "ok": {"type": "boolean", "enum": [True]},
                            "status": {"type": "string", "enum": ["ok", "degraded"]},
                            "degraded": {
                                "type": "object",
                                "required": ["reason", "current", "serving", "problems"],
                                "properties": {
                                    "reason": {"type": "string"},
                                    "current": {"type": "string",
                                                "description": "The build CURRENT names."},
                                    "serving": {"type": "string",
                                                "description": "The intact build served instead."},
                                    "problems": {"type": "array", "items": {
                                        "type": "object", "required": ["build", "file", "reason"],
                                        "properties": {"build": {"type": "string"},
                                                       "file": {"type": "string"},
                                                       "reason": {"type": "string"}}}},
                                },
                            },
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
    """Report that the service answers, how old the served index is, and whether it is intact."""
    app_state = state()
    kb = app_state.knowledge_base(verify=True)  # stat the build now: a health answer is only true now
    manifest = kb.status()
    built = datetime.fromisoformat(manifest["built_at"])
    age = max(0.0, (datetime.now(UTC) - built).total_seconds())
    served = app_state.served
    body: dict[str, object] = {"ok": True, "status": "ok", "index_age_seconds": round(age, 1),
                               "built_at": manifest["built_at"], "build": manifest["build"],
                               "counts": manifest["counts"]}
    if served is not None and served.degraded and served.build_dir == kb.build_dir:
        body["status"] = "degraded"
        body["degraded"] = {"reason": served.reason(), "current": served.current,
                            "serving": served.build_dir.name,
                            "problems": [p.to_dict() for p in served.problems]}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"  # a health answer is only true now
    return response
