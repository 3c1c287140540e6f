"""POST /api/v1/calls: a phone call with its transcript (integration token).

The body (up to max_attachment_bytes: a transcript is a document) is channels.voice.CallIn: the call record (call id, caller, callee, direction, times,
optional recording URL, language, conversation_id) with structured `turns` or a `transcript`
document in any supported format. The answer is that of POST /api/v1/messages: 201 with the ids
when stored, 200 with created false when that call id was stored before.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from channels.voice import CHANNEL, CallIn, message_from_record
from hub.contract.errors import RejectedInput
from hub.ingest.hub_link import ingest_message
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.http import parse_body, principal
from hub.web.keys import METRICS, SETTINGS


async def post_call(request: web.Request) -> web.Response:
    principal(request, "integration")
    # A transcript is a document, like an attachment: an hour's Amazon Transcribe output is ~2.3 MB,
    # far over the small limit of ordinary JSON bodies.
    body = await parse_body(request, CallIn, limit=transcript_limit(request.app[SETTINGS]),
                            setting="SERVICEHUB_MAX_ATTACHMENT_BYTES")
    try:
        # Parsing a large transcript is CPU work: off the event loop.
        message = await asyncio.to_thread(message_from_record, body)
    except RejectedInput:
        request.app[METRICS].rejected.labels(CHANNEL).inc()
        raise
    result = await ingest_message(request.app, message)
    return web.Response(
        status=201 if result.created else 200,
        text=json.dumps(
            {
                "customer_id": result.customer_id,
                "conversation_id": result.conversation_id,
                "message_id": result.message_id,
                "created": result.created,
            }
        ),
        content_type="application/json",
    )


def transcript_limit(settings) -> int:
    """What POST /api/v1/calls accepts: the call record and a transcript as large as an attachment."""
    return max(settings.max_request_bytes, settings.max_attachment_bytes)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/calls", post_call)


def openapi() -> ApiDoc:
    paths = {
        "/api/v1/calls": {
            "post": doc.op(
                "Ingest a phone call with its transcript (integration token): structured turns, or a "
                "transcript document (WebVTT, SubRip, Amazon Transcribe / Call Analytics / Contact Lens / "
                "Post-Call Analytics, Deepgram, AssemblyAI, Whisper JSON, or 'Agent:'/'Customer:' text)",
                {"201": doc.json_response(s.IngestOut, "stored"), "200": doc.json_response(s.IngestOut, "a duplicate: this call id was stored before"),
                 **doc.errors(400, 401, 403, 413, 422)},
                body=CallIn, tags=["ingest"],
            )
        },
    }
    return ApiDoc(paths, [s.IngestOut, CallIn])


capability = Capability("calls", routes=add_routes, openapi=openapi, requires=("ingest",))
