"""The official MCP Python SDK (`mcp` 2.x) as an agent of the control plane.

Connects to URL with TOKEN in one of three ways, lists the tools, calls an
allowed tool and asserts that a forbidden one is refused, then prints one
JSON line with what it saw. Exits non-zero on any failure.

  python_client.py auto|legacy|session URL TOKEN ALLOWED_TOOL ARGS_JSON FORBIDDEN_TOOL

auto:    mcp.Client in its default mode (probes `server/discover`, 2026-07-28)
legacy:  mcp.Client(mode="legacy"), the initialize handshake
session: the low-level ClientSession with `initialize()`
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


async def main(mode, url, token, allowed, args, forbidden):
    headers = {"Authorization": f"Bearer {token}"}
    http = create_mcp_http_client(headers=headers)
    transport = streamable_http_client(url, http_client=http)
    if mode == "session":
        async with transport as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            protocol = init.protocol_version
            return await run(protocol, session.list_tools, session.call_tool, allowed, args, forbidden)
    async with Client(transport, mode="legacy" if mode == "legacy" else "auto") as client:
        protocol = client.session.protocol_version if hasattr(client.session, "protocol_version") else None
        return await run(protocol, client.list_tools, client.call_tool, allowed, args, forbidden)


async def run(protocol, list_tools, call_tool, allowed, args, forbidden):
    tools = sorted(tool.name for tool in (await list_tools()).tools)
    result = await call_tool(allowed, args)
    if result.is_error:
        raise SystemExit(f"{allowed} failed: {result}")
    refusal = None
    try:
        outcome = await call_tool(forbidden, {})
        refusal = {"is_error": bool(outcome.is_error)}
    except MCPError as error:
        refusal = {"code": error.error.code, "message": error.error.message}
    if refusal.get("code") is None:
        raise SystemExit(f"{forbidden} was not refused: {refusal}")
    return {
        "protocol": str(protocol) if protocol else None,
        "tools": tools,
        "structured": result.structured_content,
        "text": next((block.text for block in result.content if block.type == "text"), None),
        "refusal": refusal,
    }


if __name__ == "__main__":
    mode, url, token, allowed, args, forbidden = sys.argv[1:7]
    summary = asyncio.run(main(mode, url, token, allowed, json.loads(args), forbidden))
    print(json.dumps(summary))
