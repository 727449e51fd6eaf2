"""A reference for bench/single_line.py: the least a FastAPI endpoint does for a line:
route, read the body, decode the JSON, return 202 (no auth, validation, log or write)."""

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/transactions", status_code=202)
async def transactions(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"accepted":1}', status_code=202, media_type="application/json")
