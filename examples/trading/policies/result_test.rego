# Tests of result.rego and of the argument rule on secrets in authz.rego.
package mcp.result_test

import rego.v1

import data.mcp.authz
import data.mcp.result

finding(kind, part, path) := {"kind": kind, "part": part, "path": path}

call_with(findings) := {
	"agent": {"id": "agent-7", "role": "trader", "claims": {}},
	"tool": {"kind": "tool", "name": "read_positions", "upstream_name": "read_positions", "server": "s", "tags": []},
	"arguments": {"account": "ACC-001"},
	"findings": findings,
	"environment": "staging",
	"request": {"trace_id": "t", "time": "2026-11-25T12:00:00Z", "timestamp": 1795608000, "front_door": "rest", "action": "call"},
}

test_private_keys_and_cloud_keys_in_a_result_are_redacted if {
	key := finding("private_key", "result", "/content/0/text")
	cloud := finding("aws_access_key", "result", "/structuredContent/note")
	result.redact == {key, cloud} with input as call_with([key, cloud, finding("email", "result", "/content/0/text")])
}

test_a_result_without_secrets_is_left_alone if {
	count(result.redact) == 0 with input as call_with([finding("email", "result", "/content/0/text")])
}

test_arguments_that_carry_a_key_are_denied_with_a_reason if {
	input_doc := call_with([finding("private_key", "arguments", "/note")])
	not authz.allow with input as input_doc
	"the arguments carry a private key or a cloud access key" in authz.reasons with input as input_doc
}

test_a_key_in_a_result_does_not_deny_the_call if {
	authz.allow with input as call_with([finding("private_key", "result", "/content/0/text")])
}
