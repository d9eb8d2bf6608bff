# Tests of authz.rego: `mcp-control-plane policy test examples/trading/policies`.
# The control plane also runs them before a changed policy goes into force.
package mcp.authz_test

import rego.v1

import data.mcp.authz

call(tool, arguments, environment) := {
	"agent": {"id": "agent-7", "role": "trader", "claims": {}},
	"tool": {"kind": "tool", "name": tool, "upstream_name": tool, "server": "s", "tags": []},
	"arguments": arguments,
	"environment": environment,
	"request": {"trace_id": "t", "time": "2026-11-25T12:00:00Z", "timestamp": 1795608000, "front_door": "rest", "action": "call"},
}

test_analysts_may_read_positions if {
	authz.allow with input as object.union(call("read_positions", {"account": "ACC-001"}, "production"), {"agent": {"id": "agent-42", "role": "analyst", "claims": {}}})
}

test_trades_are_blocked_in_production if {
	input_doc := call("execute_trade", {"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 1}, "production")
	not authz.allow with input as input_doc
	not authz.visible with input as input_doc
}

test_small_trades_pass_outside_production if {
	authz.allow with input as call("execute_trade", {"account": "ACC-001", "symbol": "AAPL", "side": "buy", "quantity": 10}, "staging")
}

test_a_trade_above_the_notional_limit_is_denied_with_a_reason if {
	input_doc := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": 20000, "limit_price": 100}, "staging")
	not authz.allow with input as input_doc
	authz.reasons == {"order notional 2000000 exceeds the desk limit of 1000000"} with input as input_doc
}

test_a_limit_order_is_valued_at_its_limit_price if {
	authz.allow with input as call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": 5000, "limit_price": 100}, "staging")
}

test_a_market_order_needs_a_reference_price if {
	input_doc := call("execute_trade", {"account": "ACC-001", "symbol": "ZZZ", "side": "buy", "quantity": 1}, "staging")
	not authz.allow with input as input_doc
	authz.reasons == {"no reference price for ZZZ: only a buy with a limit_price can be valued"} with input as input_doc
	authz.allow with input as call("execute_trade", {"account": "ACC-001", "symbol": "ZZZ", "side": "buy", "quantity": 10, "limit_price": 5}, "staging")
}

test_a_zero_or_missing_price_never_shrinks_an_order if {
	zero := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": 1000000, "limit_price": 0}, "staging")
	not authz.allow with input as zero
	authz.reasons == {"limit_price must be a number greater than 0"} with input as zero
	text := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": 1000000, "limit_price": "0"}, "staging")
	not authz.allow with input as text
}

test_a_sell_is_valued_at_the_market_when_that_is_higher if {
	low := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "sell", "quantity": 2000, "limit_price": 1}, "staging")
	not authz.allow with input as low
	authz.reasons == {"order notional 1807100 exceeds the desk limit of 1000000"} with input as low
	high := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "sell", "quantity": 100, "limit_price": 2000}, "staging")
	authz.allow with input as high
	unknown := call("execute_trade", {"account": "ACC-001", "symbol": "ZZZ", "side": "sell", "quantity": 1, "limit_price": 5}, "staging")
	not authz.allow with input as unknown
}

test_reports_only_for_the_agents_own_desks if {
	own := object.union(call("run_report", {"desk": "fx", "report": "pnl"}, "staging"), {"agent": {"id": "agent-42", "role": "analyst", "claims": {}}})
	authz.allow with input as own
	other := object.union(call("run_report", {"desk": "rates", "report": "pnl"}, "staging"), {"agent": {"id": "agent-42", "role": "analyst", "claims": {}}})
	not authz.allow with input as other
}

test_an_order_needs_a_positive_numeric_quantity if {
	negative := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": -5000, "limit_price": 100}, "staging")
	authz.reasons == {"quantity must be a number greater than 0"} with input as negative
	text := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy", "quantity": "12", "limit_price": 100}, "staging")
	authz.reasons == {"quantity must be a number greater than 0"} with input as text
	missing := call("execute_trade", {"account": "ACC-001", "symbol": "NVDA", "side": "buy"}, "staging")
	not authz.allow with input as missing
}

test_a_report_without_a_desk_is_refused if {
	no_desk := object.union(call("run_report", {"report": "pnl"}, "staging"), {"agent": {"id": "agent-42", "role": "analyst", "claims": {}}})
	not authz.allow with input as no_desk
}
