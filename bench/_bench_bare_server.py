"""The HTTP ceiling for bench/ingest.py: aiohttp alone on POST /api/v1/messages, reading the JSON
body and answering 201 with ids, nothing stored. What the framework and the client cost per
request on this machine; the hub's figure is read against it, as ingest's against raw inserts.

    python bench/_bench_bare_server.py PORT
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

ANSWER = {"customer_id": 1, "conversation_id": 1, "message_id": 1, "created": True}


async def post_message(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    if not isinstance(body, dict):
        raise web.HTTPBadRequest()
    return web.Response(status=201, text=json.dumps(ANSWER), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
