"""A legacy MCP server for the control plane's upstream tests: the official
Python SDK (`mcp` 2.x) serving the 2024-11-05 HTTP+SSE transport only
(GET /sse for the event stream, POST /messages/ for the client's messages).

  sse_server.py PORT

Listens on 127.0.0.1:PORT. Tools:
  shout   upper-cases `text` (a structured result)
  bearer  the bearer token the POST that carried this call had, so a test can
          check the per-call credential reached the server in the header
"""

import sys
from typing import TypedDict

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("legacy-sse")


class Shouted(TypedDict):
    text: str


class Bearer(TypedDict):
    scheme: str
    token: str


@server.tool()
def shout(text: str) -> Shouted:
    """Upper-case the text."""
    return {"text": text.upper()}


@server.tool()
def bearer(ctx: Context) -> Bearer:
    """The bearer token this call arrived with."""
    request = ctx.request_context.request
    header = request.headers.get("authorization", "") if request is not None else ""
    scheme, _, token = header.partition(" ")
    return {"scheme": scheme, "token": token}


if __name__ == "__main__":
    server.run(transport="sse", host="127.0.0.1", port=int(sys.argv[1]))
