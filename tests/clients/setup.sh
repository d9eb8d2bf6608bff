#!/usr/bin/env bash
# Installs the MCP clients the integration tests drive (the official Python
# SDK, fastmcp and the OpenAI Agents SDK in a venv, LangChain's adapter in
# another, and the TypeScript SDK in node_modules) and the
# specification's reference server (from ../shared), all in a cache
# outside the clone (MCP_CP_CLIENTS_DIR, default ~/.cache/mcp-control-plane/clients),
# reinstalled only when the pinned versions here change. Prints the directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${MCP_CP_CLIENTS_DIR:-$HOME/.cache/mcp-control-plane/clients}"
mkdir -p "$dir"
if ! cmp -s "$here/requirements.txt" "$dir/requirements.txt" || ! "$dir/venv/bin/python" -c 'import mcp' 2>/dev/null; then
  rm -rf "$dir/venv"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$dir/requirements.txt"
fi
# LangChain's MCP adapter needs the 1.x Python SDK: a venv of its own.
if ! cmp -s "$here/requirements-langchain.txt" "$dir/requirements-langchain.txt" || ! "$dir/venv-langchain/bin/python" -c 'import langchain_mcp_adapters' 2>/dev/null; then
  rm -rf "$dir/venv-langchain"
  python3 -m venv "$dir/venv-langchain"
  "$dir/venv-langchain/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-langchain.txt" >&2
  cp "$here/requirements-langchain.txt" "$dir/requirements-langchain.txt"
fi
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules/@modelcontextprotocol/sdk" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
fi
# The specification's reference server (the conformance project's
# everything-server), as shipped in ../shared beside the clone: copied, then
# installed from its own lock.
reference="$here/../../../shared/conformance-server"
if [ -d "$reference" ] && { ! cmp -s "$reference/package-lock.json" "$dir/reference-server/package-lock.json" || [ ! -x "$dir/reference-server/node_modules/.bin/tsx" ]; }; then
  rm -rf "$dir/reference-server"
  cp -r "$reference" "$dir/reference-server"
  (cd "$dir/reference-server" && npm ci --no-audit --no-fund --silent >&2)
fi
# OPA's own engine (the OPA Go library as a C shared library with a ctypes
# wrapper) for the policy differential test: its wheel is tagged for Python
# 3.14 but the library loads from 3.11, so it is unpacked, not installed.
opa_wheel="opa-golib-python-bindings==0.4.4"
if [ ! -f "$dir/opa/$opa_wheel" ]; then
  rm -rf "$dir/opa" && mkdir -p "$dir/opa"
  "$dir/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --python-version 3.14 --only-binary=:all: "$opa_wheel" -d "$dir/opa" >&2
  "$dir/venv/bin/python" -m zipfile -e "$dir/opa"/opa_golib_python_bindings-*.whl "$dir/opa/lib"
  touch "$dir/opa/$opa_wheel"
fi
echo "$dir"
