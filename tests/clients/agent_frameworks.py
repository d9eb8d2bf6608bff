"""Two agent frameworks' MCP clients, run against one MCP endpoint, so a
test can compare each connected directly to a server and through the
control plane: LangChain's (`langchain-mcp-adapters`) and the OpenAI
Agents SDK's (`openai-agents`).

  agent_frameworks.py langchain|openai-agents URL TOKEN-or-""

(LangChain's adapter needs the `mcp` 1.x SDK, so setup.sh gives it a venv
of its own, `venv-langchain`; the Agents SDK runs in the main one.)

Against server-everything's tools, with each client: list the tools, call
`echo`, call `get-sum` with an argument of the wrong type (the model must
get a tool error it can correct, not an exception that ends its run), and
(LangChain, whose client takes progress callbacks) run
`trigger-long-running-operation` counting its progress. Prints one JSON
summary.
"""

import asyncio
import json
import re
import sys



def texts(blocks):
    """The text of LangChain's content blocks (their ids vary per call)."""
    if isinstance(blocks, str):
        return blocks
    return " ".join(block.get("text", "") for block in blocks if isinstance(block, dict))


def headers(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


async def langchain(url, token):
    from langchain_mcp_adapters.callbacks import Callbacks
    from langchain_mcp_adapters.client import MultiServerMCPClient

    progress = []

    async def on_progress(value, total, message, context):
        progress.append(value)

    connection = {"url": url, "transport": "streamable_http", "headers": headers(token)}
    client = MultiServerMCPClient({"s": connection}, callbacks=Callbacks(on_progress=on_progress))
    tools = {tool.name: tool for tool in await client.get_tools()}
    summary = {"tools": sorted(tools)}
    summary["echo"] = texts(await tools["echo"].ainvoke({"message": "hi"}))
    try:
        wrong = await tools["get-sum"].ainvoke({"a": 2, "b": "x"})
        # The server's words and the control plane's differ; both must
        # come back as text that names the argument.
        named = re.search(r"\bb\b", texts(wrong)) is not None
        summary["wrong_argument"] = {"returned": True, "names_the_argument": named}
    except Exception as error:  # ends the agent's run
        summary["wrong_argument"] = {"raised": type(error).__name__}
    operation = {"duration": 1, "steps": 4}
    summary["long_running"] = texts(await tools["trigger-long-running-operation"].ainvoke(operation))
    summary["progress"] = sorted(progress)
    return summary


async def openai_agents(url, token):
    from agents.mcp import MCPServerStreamableHttp

    params = {"url": url, "headers": headers(token), "timeout": 30}
    async with MCPServerStreamableHttp(params=params, client_session_timeout_seconds=30) as server:
        summary = {"tools": sorted(tool.name for tool in await server.list_tools())}
        echo = await server.call_tool("echo", {"message": "hi"})
        summary["echo"] = echo.content[0].text
        try:
            wrong = await server.call_tool("get-sum", {"a": 2, "b": "x"})
            summary["wrong_argument"] = {"is_error": wrong.is_error}
        except Exception as error:  # ends the agent's run
            summary["wrong_argument"] = {"raised": type(error).__name__}
    return summary


CLIENTS = {"langchain": langchain, "openai-agents": openai_agents}


async def main(client, url, token):
    print(json.dumps(await CLIENTS[client](url, token)))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
