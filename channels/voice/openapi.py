"""POST /api/v1/calls in the hub's OpenAPI document (merged in through the channel registry). The
answer's and the errors' shapes are the hub's own (IngestOut, ErrorOut), referred to by name."""

from __future__ import annotations

from channels.voice.record import CallIn

OPENAPI_MODELS = [CallIn]

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def _ingested(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestOut"}}}}


def openapi_paths() -> dict:
    return {
        "/api/v1/calls": {
            "post": {
                "summary": "Ingest a phone call with its transcript (integration token): structured turns, or a "
                "transcript document (WebVTT, SubRip, Amazon Transcribe / Call Analytics / Contact Lens / "
                "Post-Call Analytics, Deepgram, AssemblyAI, Whisper JSON, or 'Agent:'/'Customer:' text)",
                "responses": {
                    "201": _ingested("stored"),
                    "200": _ingested("a duplicate: this call id was stored before"),
                    **{str(code): _ERROR for code in (400, 401, 403, 413, 422)},
                },
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallIn"}}}},
                "tags": ["ingest"],
            }
        }
    }
