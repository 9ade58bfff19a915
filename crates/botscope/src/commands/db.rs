//! `botscope db`: the store's schema, what a new version of botscope will change in it, and the
//! upgrade itself.

use anyhow::Context;
use botscope_center::rollup;
use botscope_store::{AnyStore, StoreUrl};

/// Days of roll-ups `db status` counts before it says "or more".
const ROLLUPS_COUNTED: u32 = 100_000;
use clap::Subcommand;

const DB_ABOUT: &str = "The store's schema: which migrations it has and which this build would add.

Every command that opens the store applies missing migrations on its own, so nothing needs doing
after an upgrade of botscope. `db upgrade` does it deliberately instead: after a backup, before
starting the new version's servers, with `--dry-run` first to see what will change. Migrations only
add (tables, columns, indexes); see docs/center.md, \"Backup and upgrade\".";

/// What `botscope db` does.
#[derive(Debug, Subcommand)]
#[command(long_about = DB_ABOUT)]
pub enum DbCommand {
    /// Lists the migrations this build carries and whether the store has each
    #[command(
        after_help = "Examples:\n  botscope db status\n  botscope --db postgres://botscope@127.0.0.1/botscope db status"
    )]
    Status,
    /// Applies the migrations the store lacks (after a backup); --dry-run only lists them
    #[command(
        after_help = "Examples:\n  botscope db upgrade --dry-run\n  botscope --db postgres://botscope@db.centre.example/botscope db upgrade"
    )]
    Upgrade {
        /// List what would be applied and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Brings the daily roll-ups the dashboard counts from up to date now
    #[command(
        long_about = "Brings the daily roll-ups up to date now: every day with records written since its \
last refresh is counted again from its records.\n\n`botscope serve` does this on its own (in the \
background, and before a page reads them); run this after upgrading a large store, before starting \
the servers, so that the first page does not wait for a year of days.",
        after_help = "Examples:\n  botscope db rollups\n  botscope --db postgres://botscope@127.0.0.1/botscope db rollups"
    )]
    Rollups,
    /// Deletes raw observations older than the retention (store.retention_days or --keep-days)
    #[command(
        long_about = "Deletes the raw observations (telescope activity, survey services and findings, C&C \
reports) from before the last N days, today included, in short batches. The daily roll-ups are \
brought up to date first and the pruned days keep them, so the dashboard's charts keep their \
history; cases, outcomes, botnets, liveness and feeds are never pruned.\n\n`botscope serve` does \
this every hour when store.retention_days is set; run it by hand with --dry-run first to see what \
would go. Deleted records are gone: take a backup first (docs/center.md).",
        after_help = "Examples:\n  botscope db prune --keep-days 400 --dry-run\n  botscope --config /etc/botscope/botscope.toml db prune"
    )]
    Prune {
        /// Days kept, today included (default: store.retention_days)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
        keep_days: Option<u32>,
        /// Count what would be deleted and change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(command: DbCommand, settings: &crate::settings::Settings) -> anyhow::Result<std::process::ExitCode> {
    let url = StoreUrl::parse(&settings.config.store.url)?;
    if let StoreUrl::Sqlite(path) = &url
        && !path.exists()
    {
        // Opening would make an empty store, which is not what someone asking about theirs means.
        anyhow::bail!("no store at {} (check --db or store.url)", path.display());
    }
    let store = AnyStore::open_unmigrated(&url, 1).await.with_context(|| format!("store {url}"))?;
    let migrations = store.migrations().await.with_context(|| format!("store {url}"))?;
    let pending: Vec<_> = migrations.iter().filter(|m| !m.applied).collect();
    let changed: Vec<_> = migrations.iter().filter(|m| m.changed).collect();
    let changed_text = || {
        let numbers: Vec<String> = changed.iter().map(|m| format!("{:04}", m.version)).collect();
        format!(
            "migration(s) {} were applied from other files than this build's: a released migration was edited, or \
             another build wrote this store; restore the build that applied them (or the backup taken before) \
             rather than run on a schema neither can vouch for",
            numbers.join(", ")
        )
    };
    match command {
        DbCommand::Status => {
            println!("store {url}");
            for m in &migrations {
                let state = match (m.applied, m.changed) {
                    (true, true) => "applied from another file (CHANGED)",
                    (true, false) => "applied",
                    (false, _) => "pending",
                };
                println!("  {:04} {:<30} {state}", m.version, m.description);
            }
            if !changed.is_empty() {
                anyhow::bail!("{}", changed_text());
            }
            if pending.is_empty() {
                println!("up to date: the store has every migration this build carries");
                let waiting = rollup::pending(&store, ROLLUPS_COUNTED).await?;
                if waiting > 0 {
                    let more = if waiting as u32 >= ROLLUPS_COUNTED { " or more" } else { "" };
                    println!(
                        "daily roll-ups: {waiting}{more} day(s) of records not yet counted (`botscope serve` counts them; `botscope db rollups` does it now)"
                    );
                }
            } else {
                println!("{} pending: `botscope db upgrade` applies them (take a backup first)", pending.len());
            }
        }
        DbCommand::Rollups => {
            anyhow::ensure!(changed.is_empty(), "{}", changed_text());
            anyhow::ensure!(
                pending.is_empty(),
                "the store lacks {} migration(s): run `botscope db upgrade` first",
                pending.len()
            );
            let waiting = rollup::pending(&store, ROLLUPS_COUNTED).await?;
            let bar = indicatif::ProgressBar::new(waiting as u64).with_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} days, {msg} records read, {eta} left")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let done = rollup::refresh_reporting(&store, |so_far| {
                if so_far.days > bar.length().unwrap_or(0) {
                    bar.set_length(so_far.days);
                }
                bar.set_position(so_far.days);
                bar.set_message(so_far.records.to_string());
            })
            .await
            .with_context(|| format!("store {url}"))?;
            bar.finish_and_clear();
            println!("daily roll-ups up to date: {} day(s) counted from {} record(s)", done.days, done.records);
        }
        DbCommand::Prune { keep_days, dry_run } => {
            anyhow::ensure!(changed.is_empty(), "{}", changed_text());
            anyhow::ensure!(
                pending.is_empty(),
                "the store lacks {} migration(s): run `botscope db upgrade` first",
                pending.len()
            );
            let keep_days = match (keep_days, settings.config.store.retention_days.get()) {
                (Some(days), _) => days,
                (None, 0) => anyhow::bail!(
                    "no retention set: pass --keep-days N or set store.retention_days in the configuration"
                ),
                (None, days) => days as u32,
            };
            let today = chrono::Utc::now().date_naive();
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let done = botscope_center::retention::prune(&store, keep_days, today, dry_run, |kind, deleted| {
                bar.set_message(format!("{kind}: {deleted} deleted"));
                bar.tick();
            })
            .await
            .with_context(|| format!("store {url}"))?;
            bar.finish_and_clear();
            let verb = if dry_run { "would delete" } else { "deleted" };
            println!("keeping {keep_days} day(s): from {} on (UTC)", done.first_kept);
            for (kind, n) in &done.per_kind {
                println!("  {kind:<10} {n} record(s) {verb}");
            }
            if dry_run {
                println!("dry run: nothing changed");
            } else {
                println!("done: {} record(s) deleted; the pruned days keep their daily roll-ups", done.total());
            }
        }
        DbCommand::Upgrade { dry_run } => {
            anyhow::ensure!(changed.is_empty(), "{}", changed_text());
            if pending.is_empty() {
                println!("store {url} is up to date; nothing to apply");
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let verb = if dry_run { "would apply" } else { "applying" };
            println!("store {url}: {verb} {} migration(s)", pending.len());
            for m in &pending {
                println!("  {:04} {}", m.version, m.description);
            }
            if dry_run {
                println!("dry run: nothing changed");
            } else {
                store.upgrade().await.with_context(|| format!("upgrading store {url}"))?;
                println!("done: the store has every migration this build carries");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
