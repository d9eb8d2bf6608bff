use clap::Parser;
use mcp_control_plane::cli::Cli;

fn main() -> std::process::ExitCode {
    mcp_control_plane::cli::run(Cli::parse())
}
