# The desk's rule on tool results: evaluated on every result before it
# leaves, on the call's input document plus `result` (content,
# structuredContent, isError) and `findings` (what the detectors found in
# the arguments and the result). `deny` (a set of reasons) withholds a
# result; `redact` names what is replaced by "[redacted]": a finding (that
# kind's matches in the string at its path) or `{"path": ...}` (the value
# at a JSON pointer into the result).
package mcp.result

import rego.v1

# Secrets no result may carry to an agent.
secret_kinds := {"private_key", "aws_access_key", "gcp_service_account_key"}

redact contains finding if {
	some finding in input.findings
	finding.part == "result"
	finding.kind in secret_kinds
}
