"""The baseline for bench/single_line.py: a bare uvicorn endpoint that reads the body and returns 202."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def transactions(request: Request) -> Response:
    await request.body()
    return Response(b'{"accepted":1}', status_code=202, media_type="application/json")


app = Starlette(routes=[Route("/transactions", transactions, methods=["POST"])])
