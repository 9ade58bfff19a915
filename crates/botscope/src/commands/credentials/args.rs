//! The `botscope credentials` command line: every flag it takes, with its help and examples.

use clap::{Args, Subcommand};
use std::path::PathBuf;

pub const CREDENTIALS_CHECK_ABOUT: &str = "\
Validate a login dictionary (default: the shipped data/credentials.toml) as a reviewed data set:
ids and pairs unique, every pair names at least one source that the file describes in a
[source.NAME] table, weights 1-100, a `version = N`, and a change log ([[change]], oldest first)
whose entries each say what changed, why, when, who proposed it and who approved it (someone
else), the last one making version N. Every problem is printed as FILE:LINE: what is wrong, and
the exit status is 1; a valid file prints a summary (pairs, per source, per weight, the latest
change). The format is in docs/formats.md; the review rule in docs/scanning-policy.md.";

pub const CREDENTIALS_EXAMPLES: &str = "\
Examples:
  botscope credentials check
  botscope credentials check my-credentials.toml
  botscope credentials list --limit 20";

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Validate a dictionary file and summarise it
    #[command(long_about = CREDENTIALS_CHECK_ABOUT, after_help = CREDENTIALS_EXAMPLES)]
    Check(CredentialsCheckArgs),

    /// List the pairs in the order the survey tries them: rank, id, weight, username, sources
    /// (never the password)
    #[command(after_help = CREDENTIALS_EXAMPLES)]
    List(CredentialsListArgs),
}

#[derive(Debug, Args)]
pub struct CredentialsCheckArgs {
    /// Dictionary file [default: the shipped data/credentials.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CredentialsListArgs {
    /// Dictionary file [default: the shipped data/credentials.toml]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Show only the first N pairs of the trial order
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}
