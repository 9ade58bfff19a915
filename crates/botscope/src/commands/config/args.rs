//! The `botscope config` command line: every flag it takes, with its help and examples.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values (file, environment and flags
    /// applied)
    #[command(
        after_help = "Examples:\n  botscope config check\n  botscope --config /etc/botscope.toml config check\n  BOTSCOPE_DB=postgres://botscope@127.0.0.1/botscope botscope config check"
    )]
    Check,
}
