//! `token`: service-token chores for operators.

use clap::{Args, Subcommand};

use crate::identity::token_sha256_hex;

/// Make service tokens for agents.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token once, and the catalog entry that holds
    /// only its SHA-256. Hand the token to the agent; it is not stored anywhere.
    New {
        /// The agent the token is for.
        #[arg(long)]
        agent: String,
        /// The agent's role, for the printed catalog entry.
        #[arg(long, default_value = "ROLE")]
        role: String,
    },
}

pub fn run(args: &TokenArgs) {
    match &args.command {
        TokenCommand::New { agent, role } => {
            let token = new_token();
            println!("token: {token}");
            println!("catalog entry (under `agents:`):");
            println!(
                "  {agent}: {{role: {role}, token_sha256: {}}}",
                token_sha256_hex(&token)
            );
        }
    }
}

/// 256 random bits, hex, with a recognisable prefix (for secret scanners).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("mcp_{}", hex::encode(bytes))
}
