//! `botscope credentials`: the login dictionary as a reviewed data set.

mod args;
pub use args::*;

use std::process::ExitCode;

use anyhow::Context;
use botscope_survey::catalog::{Dictionary, SHIPPED_CREDENTIALS};
use botscope_survey::dictionary::{self, CheckError};

const SHIPPED_NAME: &str = "data/credentials.toml (shipped)";

/// Runs a `credentials` subcommand.
pub fn run(command: CredentialsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CredentialsCommand::Check(args) => check(args),
        CredentialsCommand::List(args) => list(args),
    }
}

fn check(args: CredentialsCheckArgs) -> anyhow::Result<ExitCode> {
    let (name, result) = match &args.file {
        Some(path) => (path.display().to_string(), dictionary::check_file(path)),
        None => (SHIPPED_NAME.to_string(), dictionary::check(SHIPPED_CREDENTIALS, SHIPPED_NAME)),
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(CheckError::Invalid { problems, .. }) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!("{name}: {} problem(s); the dictionary is not valid", problems.len());
            return Ok(ExitCode::FAILURE);
        }
        Err(error @ CheckError::Read { .. }) => return Err(error.into()),
    };
    println!("{name}: valid");
    println!("version {}: {} pairs, {} change-log entries", summary.version, summary.pairs, summary.changes);
    println!(
        "latest change: {}, proposed by {}, approved by {}",
        summary.latest.date, summary.latest.proposed_by, summary.latest.approved_by
    );
    println!("pairs per source (a pair may have several):");
    for (source, count) in &summary.per_source {
        println!("  {source:<28} {count:>5}");
    }
    let weights: Vec<String> = summary.per_weight.iter().rev().map(|(w, n)| format!("{w}: {n}")).collect();
    println!("pairs per weight (tried highest first): {}", weights.join(", "));
    println!("protocols: every pair is tried on each login protocol (telnet, ssh, http/https Basic and Digest)");
    if !summary.unused_sources.is_empty() {
        println!("sources no pair names: {}", summary.unused_sources.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn list(args: CredentialsListArgs) -> anyhow::Result<ExitCode> {
    let dictionary = match &args.file {
        Some(path) => Dictionary::load(path).with_context(|| format!("loading {}", path.display()))?,
        None => Dictionary::shipped(),
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    // Passwords stay out: the list is for reviewing order and provenance, and terminals get logged.
    writeln!(out, "rank\tid\tweight\tusername\tsources")?;
    for (rank, credential) in dictionary.ordered().iter().take(args.limit.unwrap_or(usize::MAX)).enumerate() {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            rank + 1,
            credential.id,
            credential.weight,
            credential.username.escape_debug(),
            credential.sources.join(",")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
