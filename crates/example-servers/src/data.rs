//! The example's deterministic trading data and tool logic.

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::json_result;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadPositionsArgs {
    /// Trading account, for example `ACC-001`.
    pub account: String,
    /// Only this instrument (ticker), when set.
    #[serde(default)]
    pub symbol: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecuteTradeArgs {
    /// Trading account, for example `ACC-001`.
    pub account: String,
    /// Instrument ticker, for example `AAPL`.
    pub symbol: String,
    pub side: Side,
    /// Number of shares; must be positive.
    pub quantity: u64,
    /// Limit price; a market order when absent.
    #[serde(default)]
    pub limit_price: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Pnl,
    Exposure,
    Risk,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunReportArgs {
    /// The desk, for example `equities`.
    pub desk: String,
    pub report: ReportKind,
}

/// (account, symbol, quantity, average price)
const POSITIONS: &[(&str, &str, i64, f64)] = &[
    ("ACC-001", "AAPL", 1_200, 187.42),
    ("ACC-001", "MSFT", 800, 411.10),
    ("ACC-001", "NVDA", -150, 903.55),
    ("ACC-002", "JPM", 2_500, 196.25),
    ("ACC-002", "XOM", 1_000, 112.80),
];

pub fn read_positions(args: &ReadPositionsArgs) -> CallToolResult {
    let positions: Vec<_> = POSITIONS
        .iter()
        .filter(|(account, symbol, ..)| {
            *account == args.account && args.symbol.as_deref().is_none_or(|s| s == *symbol)
        })
        .map(|(_, symbol, quantity, price)| {
            json!({
                "symbol": symbol,
                "quantity": quantity,
                "average_price": price,
                "market_value": (*quantity as f64 * price * 100.0).round() / 100.0,
            })
        })
        .collect();
    if positions.is_empty() && !POSITIONS.iter().any(|(a, ..)| *a == args.account) {
        return json_result(
            json!({ "error": format!("unknown account {}", args.account) }),
            true,
        );
    }
    json_result(
        json!({ "account": args.account, "positions": positions }),
        false,
    )
}

pub fn execute_trade(args: &ExecuteTradeArgs) -> CallToolResult {
    if args.quantity == 0 {
        return json_result(json!({ "error": "quantity must be positive" }), true);
    }
    let fingerprint = format!(
        "{}|{}|{:?}|{}|{:?}",
        args.account, args.symbol, args.side, args.quantity, args.limit_price
    );
    let digest = hex::encode(Sha256::digest(fingerprint.as_bytes()));
    json_result(
        json!({
            "order_id": format!("ORD-{}", &digest[..12]),
            "status": "accepted",
            "account": args.account,
            "symbol": args.symbol,
            "side": args.side,
            "quantity": args.quantity,
            "order_type": if args.limit_price.is_some() { "limit" } else { "market" },
            "limit_price": args.limit_price,
        }),
        false,
    )
}

pub fn run_report(args: &RunReportArgs) -> CallToolResult {
    let digest = Sha256::digest(args.desk.as_bytes());
    let seed = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let amount = |scale: u32| f64::from(seed % scale) / 100.0;
    let figures = match args.report {
        ReportKind::Pnl => {
            json!({ "daily_pnl": amount(5_000_000) - 25_000.0, "mtd_pnl": amount(50_000_000) })
        }
        ReportKind::Exposure => {
            json!({ "gross_exposure": amount(900_000_000), "net_exposure": amount(300_000_000) })
        }
        ReportKind::Risk => {
            json!({ "var_99_1d": amount(10_000_000), "beta": f64::from(seed % 200) / 100.0 })
        }
    };
    json_result(
        json!({ "desk": args.desk, "report": args.report, "figures": figures }),
        false,
    )
}
