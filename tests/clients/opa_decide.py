"""OPA's decisions, for the policy differential test: the real OPA engine
(the OPA Go library, from the PyPI wheel `opa-golib-python-bindings`, which
setup.sh unpacks under the clients' `opa/lib`) on a policy directory.

  OPA_BINDINGS=CLIENTS/opa/lib opa_decide.py DIR DATA.json

Loads every `*.rego` file under DIR (test files included: they change no
decision) and the data document DATA.json (the policy's data files, which
the test reads as the control plane does), then reads one
input document per line on stdin and writes, per line, OPA's view of the
control plane's rules: {"visible": ..., "allow": ..., "reasons": [...]}
(`data.mcp.authz`; a rule OPA leaves undefined is null, one whose
evaluation fails is {"error": MESSAGE}).
"""

import json
import os
import sys

sys.path.insert(0, os.environ["OPA_BINDINGS"])
from opa_bindings import OpaEngine, OpaError, OpaUndefinedError  # noqa: E402


def load(engine, directory, data):
    for root, _, files in sorted(os.walk(directory)):
        for name in sorted(files):
            if name.endswith(".rego"):
                path = os.path.join(root, name)
                with open(path) as source:
                    engine.add_policy(path, source.read())
    with open(data) as source:
        engine.add_data(json.load(source))


def rule(engine, name, document):
    try:
        return engine.eval_document(f"mcp.authz.{name}", input=document)
    except OpaUndefinedError:
        return None
    except OpaError as error:
        return {"error": error.message}


def main():
    engine = OpaEngine()
    load(engine, sys.argv[1], sys.argv[2])
    for line in sys.stdin:
        document = json.loads(line)
        decision = {name: rule(engine, name, document) for name in ("visible", "allow", "reasons")}
        print(json.dumps(decision), flush=True)


if __name__ == "__main__":
    main()
