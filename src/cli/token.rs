//! `token`: service-token chores for operators.

use clap::{Args, Subcommand};

use crate::identity::token_sha256_hex;

/// Make service tokens for agents and administrators.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh token once, and the catalog entry holding its hash.
    ///
    /// The entry holds only the token's SHA-256. Hand the token to the agent
    /// (or administrator); it is not stored anywhere.
    New {
        /// The agent the token is for.
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        agent: Option<String>,
        /// The agent's role, for the printed catalog entry.
        #[arg(long, default_value = "ROLE", conflicts_with = "admin")]
        role: String,
        /// An administrator (reads `/admin/audit`) the token is for instead.
        #[arg(long)]
        admin: Option<String>,
    },
}

pub fn run(args: &TokenArgs) {
    match &args.command {
        TokenCommand::New { agent, role, admin } => {
            let token = new_token();
            let hash = token_sha256_hex(&token);
            println!("token: {token}");
            match (agent, admin) {
                (Some(agent), _) => {
                    println!("catalog entry (under `agents:`):");
                    println!("  {agent}: {{role: {role}, token_sha256: {hash}}}");
                }
                (None, admin) => {
                    let admin = admin.as_deref().unwrap_or("ADMIN");
                    println!("catalog entry (under `admins:`):");
                    println!("  {admin}: {{token_sha256: {hash}}}");
                }
            }
        }
    }
}

/// 256 random bits, hex, with a recognisable prefix (for secret scanners).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("mcp_{}", hex::encode(bytes))
}
