"""A third-party MCP client, `fastmcp` 4.x (it negotiates 2026-07-28 when
the server offers it), run against one MCP endpoint, so a test can compare
the same client connected directly to a server and through the control
plane.

  fastmcp_client.py URL TOKEN-or-""

Against server-everything's tools: lists them, calls `echo`, calls
`get-sum` with an argument of the wrong type, and runs
`trigger-long-running-operation` counting its progress; prints one JSON
summary.
"""

import asyncio
import json
import sys

from fastmcp import Client


def text(result):
    return " ".join(block.text for block in result.content if getattr(block, "text", None))


async def main(url, token):
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    summary = {}
    async with Client(url, auth=token or None, timeout=30) as client:
        tools = await client.list_tools()
        summary["tools"] = sorted(tool.name for tool in tools)
        summary["echo"] = text(await client.call_tool("echo", {"message": "hi"}))
        try:
            wrong = await client.call_tool("get-sum", {"a": 2, "b": "x"}, raise_on_error=False)
            summary["wrong_argument"] = {"is_error": wrong.is_error}
        except Exception as error:  # a protocol error ends an agent's run
            summary["wrong_argument"] = {"raised": type(error).__name__}
        operation = {"duration": 1, "steps": 4}
        done = await client.call_tool(
            "trigger-long-running-operation", operation, progress_handler=on_progress
        )
        summary["long_running"] = text(done)
        summary["progress"] = sorted(progress)
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
