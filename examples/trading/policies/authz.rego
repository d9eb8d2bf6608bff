# The trading desk's policy. The control plane evaluates it on every call,
# after the role check and before any server is contacted; anything but
# `allow == true` is a denial. The input document is described in the
# README ("Policy"); the desk's figures are in data.yaml (`data.trading`).
package mcp.authz

import rego.v1

# Deny by default.
default allow := false

# Whether a tool or prompt exists for the caller at all: listed at
# discovery, and a precondition of every call. Outright bans belong here,
# so listing and calling never disagree about them.
default visible := false

visible if not banned

# Trading is switched off in production.
banned if {
	input.tool.name == "execute_trade"
	input.environment == "production"
}

# A call is allowed when the target is visible and no rule objects to its
# arguments.
allow if {
	visible
	count(violations) == 0
}

# What the caller is told when a call is denied.
reasons := violations

# Analysts (and traders) may read positions of any account: the seed's rule.
# No argument rule applies to read_positions.

# An order's notional: its quantity times the price it is valued at.
notional := quantity * price if input.tool.name == "execute_trade"

# Numbers only: anything else leaves these undefined, and the rules below
# then refuse the order.
quantity := input.arguments.quantity if is_number(input.arguments.quantity)

limit_price := input.arguments.limit_price if is_number(input.arguments.limit_price)

# Conditions that a `not` negates are named rules, never a comparison of a
# value that may be undefined (`not limit_price > 0`): OPA and the control
# plane's engine disagree on those (README, "Policy": "Differences from
# OPA"), and a named rule means the same in both.
positive_quantity if quantity > 0

positive_limit_price if limit_price > 0

own_desk if input.arguments.desk in object.get(data.trading.desks, input.agent.id, [])

reference := data.trading.reference_prices[input.arguments.symbol]

# A buy with a limit pays at most its limit price.
price := limit_price if {
	input.arguments.side == "buy"
	positive_limit_price
}

# A sell fills at its limit or above, at the market: the higher of the two.
price := max([limit_price, reference]) if {
	input.arguments.side == "sell"
	positive_limit_price
}

# A market order fills at the market.
price := reference if not has_limit_price

has_limit_price if "limit_price" in object.keys(input.arguments)

violations contains msg if {
	notional > data.trading.max_notional
	msg := sprintf("order notional %v exceeds the desk limit of %v", [notional, data.trading.max_notional])
}

# A negative quantity would make a negative notional, under any limit.
violations contains "quantity must be a number greater than 0" if {
	input.tool.name == "execute_trade"
	not positive_quantity
}

violations contains "limit_price must be a number greater than 0" if {
	input.tool.name == "execute_trade"
	has_limit_price
	not positive_limit_price
}

violations contains msg if {
	input.tool.name == "execute_trade"
	not price
	not reference
	msg := sprintf("no reference price for %v: only a buy with a limit_price can be valued", [input.arguments.symbol])
}

# Reports only for the agent's own desks.
violations contains msg if {
	input.tool.name == "run_report"
	not own_desk
	msg := sprintf("%v may only run reports for its own desks", [input.agent.id])
}

# No call may carry a private key or a cloud access key in its arguments
# (the control plane's detectors report them in `input.findings`: kind,
# part and path, never the value).
violations contains "the arguments carry a private key or a cloud access key" if {
	some finding in input.findings
	finding.part == "arguments"
	finding.kind in data.mcp.result.secret_kinds
}
