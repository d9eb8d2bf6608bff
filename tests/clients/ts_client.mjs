// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an agent of
// the control plane: connects with TOKEN, lists the tools, calls an allowed
// tool and checks that a forbidden one is refused, then prints one JSON line.
//
//   node ts_client.mjs URL TOKEN ALLOWED_TOOL ARGS_JSON FORBIDDEN_TOOL
//
// NODE_PATH must point at a node_modules holding @modelcontextprotocol/sdk.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH ?? ".", "noop.js"));
const { Client } = await import(require.resolve("@modelcontextprotocol/sdk/client/index.js"));
const { StreamableHTTPClientTransport } = await import(
  require.resolve("@modelcontextprotocol/sdk/client/streamableHttp.js")
);

const [url, token, allowed, args, forbidden] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-agent", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
const result = await client.callTool({ name: allowed, arguments: JSON.parse(args) });
if (result.isError) {
  throw new Error(`${allowed} failed: ${JSON.stringify(result)}`);
}
let refusal;
try {
  const outcome = await client.callTool({ name: forbidden, arguments: {} });
  throw new Error(`${forbidden} was not refused: ${JSON.stringify(outcome)}`);
} catch (error) {
  if (error.code === undefined) throw error;
  refusal = { code: error.code, message: error.message };
}
console.log(
  JSON.stringify({
    protocol: transport.protocolVersion ?? null,
    tools,
    structured: result.structuredContent ?? null,
    text: result.content?.find((block) => block.type === "text")?.text ?? null,
    refusal,
  }),
);
await client.close();
