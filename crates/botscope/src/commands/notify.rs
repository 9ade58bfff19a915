//! `botscope notify ...` and `botscope report remediation`.

use std::path::PathBuf;
use std::process::ExitCode;

use botscope_center::notify::{self, GenerateConfig, MailConfig, Period, PeriodKind, ReportFormat};
use botscope_center::remediation::{self, GroupBy};
use botscope_model::{Device, NotificationStatus, OutcomeSource, Record};
use botscope_store::Store;
use botscope_survey::catalog::DeviceCatalog;
use clap::{Args, Subcommand};

use crate::settings::Settings;

const GENERATE_ABOUT: &str = "Write each ISP's reports for a period, in the Shadowserver style: one \
file per ISP and report type (docs/notifications.md lists the columns).

--period day writes the infected-hosts report (the telescope's infected hosts, with the botnet \
each was tied to); --period month writes default_credentials, no_authentication, \
exposed_management, eol and outdated_firmware (the survey's findings). Addresses are attributed \
to ISPs by the records' isp field or the loaded routing table (botscope isp load).

Each row is a case (address, port, problem). A case seen for the first time is `new`; one \
notified before and unchanged is `repeat` (its times_notified counts reports without action); one \
whose device now looks different is `changed`. --new-only leaves repeats out of the files. \
Generating a period again changes nothing. Cases the ISP marked false_positive are left out; a \
case the ISP called fixed that shows up again becomes not_fixed.

Delivery: the files; GET /api/v1/isp/notifications for the ISP's own token; and with --smtp, one \
e-mail per ISP to its registered contact with the files attached.";

/// `botscope notify ...`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Write per-ISP report files for a day (infected) or a month (vulnerable), optionally mail them
    #[command(long_about = GENERATE_ABOUT, after_help = "Examples:\n  botscope notify generate --period day --all --out reports/\n  botscope notify generate --period month --date 2026-11 --isp hikari-net --out reports/ --format json\n  botscope notify generate --period day --all --out reports/ --smtp smtp://127.0.0.1:25 --mail-from centre@example.jp")]
    Generate(GenerateArgs),
    /// Record what an ISP did about a case: contacted, fixed, unreachable or false_positive
    #[command(
        after_help = "Examples:\n  botscope notify status 190db74e-4ec9-5071-b614-648db3ea71ef fixed --note \"password changed\""
    )]
    Status(StatusArgs),
}

/// `botscope notify generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// day (infected hosts) or month (vulnerable devices)
    #[arg(long, value_name = "PERIOD", value_parser = ["day", "month"])]
    pub period: String,
    /// The day (YYYY-MM-DD) or month (YYYY-MM) [default: the one holding the latest evidence]
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Only this ISP (repeatable)
    #[arg(long, value_name = "HANDLE", conflicts_with = "all")]
    pub isp: Vec<String>,
    /// Every registered ISP
    #[arg(long)]
    pub all: bool,
    /// Directory for the files (one folder per ISP)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// csv or json (JSON lines) for every ISP [default: each ISP's notify.format in the registry, else csv]
    #[arg(long, value_parser = ["csv", "json"])]
    pub format: Option<String>,
    /// Leave repeats (unchanged cases notified before) out of the files
    #[arg(long)]
    pub new_only: bool,
    /// Also mail each ISP its files through this relay: smtp://HOST[:PORT]
    #[arg(long, value_name = "URL", requires = "mail_from")]
    pub smtp: Option<String>,
    /// Sender address for --smtp
    #[arg(long, value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

/// `botscope notify status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The case's notification_id
    pub id: uuid::Uuid,
    /// contacted, fixed, unreachable or false_positive
    pub status: NotificationStatus,
    /// A note (no passwords, no subscriber names)
    #[arg(long)]
    pub note: Option<String>,
}

/// `botscope report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Did notifications lead to fixes? Remediation rates, time to fix, repeated notifications
    #[command(long_about = REMEDIATION_ABOUT, after_help = "Examples:\n  botscope report remediation\n  botscope report remediation --by model\n  botscope report remediation --isp hikari-net --by month --json")]
    Remediation(RemediationArgs),
    /// Outside feeds against botscope's own C&C findings: shared servers, who was first, by how many days
    #[command(after_help = "Examples:\n  botscope report feeds\n  botscope report feeds --json")]
    Feeds {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

const REMEDIATION_ABOUT: &str = "Did notifications lead to fixes?

A case is fixed when a re-survey (botscope survey --recheck) found the problem gone and nothing \
later found it back; an ISP's own \"fixed\" without such a check is shown as reported_fixed. Time to \
fix is from the first notification to the confirming re-survey, with open cases censored at now \
(Kaplan-Meier), so the median is honest while cases are still open.";

/// `botscope report remediation`.
#[derive(Debug, Args)]
pub struct RemediationArgs {
    /// Only this ISP's cases
    #[arg(long, value_name = "HANDLE")]
    pub isp: Option<String>,
    /// Group rates by isp, model or month
    #[arg(long, default_value = "isp")]
    pub by: GroupBy,
    /// The whole report as JSON
    #[arg(long)]
    pub json: bool,
}

/// The catalogue id of a device's model: the remediation guide to link.
pub fn guide_of(catalog: &DeviceCatalog) -> impl Fn(&Device) -> Option<String> + Sync + '_ {
    move |device: &Device| {
        let (vendor, model) = (device.vendor.as_deref()?, device.model.as_deref()?);
        catalog.models().iter().find(|m| m.vendor == vendor && m.model == model).map(|m| m.id.clone())
    }
}

pub async fn run(command: NotifyCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        NotifyCommand::Generate(args) => generate(args, settings).await,
        NotifyCommand::Status(args) => status(args, settings).await,
    }
}

async fn generate(args: GenerateArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.all || !args.isp.is_empty(), "say which ISPs: --isp HANDLE (repeatable) or --all");
    let kind = if args.period == "day" { PeriodKind::Day } else { PeriodKind::Month };
    let period = args.date.as_deref().map(|d| Period::parse(kind, d)).transpose()?;
    let store = settings.open_store().await?;
    let isps = store.isps().await?;
    anyhow::ensure!(!isps.is_empty(), "the ISP registry is empty: load it with botscope isp load --registry FILE");
    for handle in &args.isp {
        anyhow::ensure!(isps.iter().any(|i| &i.handle == handle), "ISP {handle} is not in the registry");
    }
    let catalog = DeviceCatalog::shipped();
    let guide = guide_of(&catalog);
    let config = GenerateConfig {
        kind,
        period,
        isps: (!args.all).then(|| args.isp.clone()),
        now: chrono::Utc::now(),
        new_only: args.new_only,
        dry_run: false,
    };
    let generated = notify::generate(&store, &config, &guide).await?;
    let period = generated.period;
    let format_of = |isp: &str| -> ReportFormat {
        let wanted = match args.format.as_deref() {
            Some(given) => given == "json",
            None => isps.iter().any(|i| i.handle == isp && i.notify.format == botscope_model::NotifyFormat::Json),
        };
        if wanted { ReportFormat::Json } else { ReportFormat::Csv }
    };
    let files = notify::write_reports(&args.out, period, &generated.rows, &format_of, args.new_only)?;
    let mailed = match (&args.smtp, &args.mail_from) {
        (Some(relay), Some(from)) => {
            notify::send_reports(&MailConfig { relay: relay.clone(), from: from.clone() }, period, &files, &isps)
                .await?
        }
        _ => Vec::new(),
    };
    if args.json {
        let mut value = serde_json::to_value(&generated)?;
        value["files"] = serde_json::to_value(&files)?;
        value["mailed"] = serde_json::to_value(&mailed)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    for file in &files {
        tracing::info!(isp = %file.isp, report = file.report.as_str(), rows = file.rows, path = %file.path.display(), "report written");
    }
    tracing::info!(
        period = %generated.period,
        new = generated.new,
        repeat = generated.repeat,
        changed = generated.changed,
        repeat_without_response = generated.repeat_without_response,
        suppressed_false_positive = generated.suppressed_false_positive,
        reopened = generated.reopened,
        unattributed = generated.unattributed,
        mailed = mailed.len(),
        "notifications generated"
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        notify::ISP_STATUSES.contains(&args.status),
        "an ISP reports contacted, fixed, unreachable or false_positive"
    );
    let store = settings.open_store().await?;
    let Some(Record::Notification(mut case)) = store.record(args.id).await? else {
        anyhow::bail!("no notification {}", args.id);
    };
    let outcome = notify::record_outcome(&store, &mut case, args.status, OutcomeSource::Isp, args.note).await?;
    eprintln!("{} ({} {}) is now {}", args.id, case.isp, case.ip, outcome.status.as_str());
    Ok(ExitCode::SUCCESS)
}

pub async fn report(command: ReportCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let args = match command {
        ReportCommand::Remediation(args) => args,
        ReportCommand::Feeds { json } => {
            // The lead times read the per-server roll-up: count what is still marked first.
            let counted = botscope_center::rollup::refresh(&store).await?;
            if counted.skipped > 0 {
                eprintln!(
                    "warning: {} day(s) of records could not be counted (see the log); their C&C servers are left out",
                    counted.skipped
                );
            }
            let leads = botscope_center::feeds::lead_times(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&leads)?);
            } else {
                println!(
                    "{:<16} {:>7} {:>7} {:>12} {:>12} {:>14} {:>10}",
                    "feed", "listed", "shared", "found_first", "days_ahead", "only_botscope", "only_feed"
                );
                for lead in &leads {
                    println!(
                        "{:<16} {:>7} {:>7} {:>12} {:>12} {:>14} {:>10}",
                        lead.source,
                        lead.listed,
                        lead.shared,
                        lead.found_first,
                        lead.median_days_ahead.map(|d| format!("{d:+.1}")).unwrap_or_else(|| "-".into()),
                        lead.only_botscope,
                        lead.only_feed
                    );
                }
                if leads.is_empty() {
                    eprintln!("no feed imported yet: botscope feeds import --format ... FILE");
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let report = remediation::report(&store, args.isp.as_deref(), args.by, chrono::Utc::now()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:>8} {:>6} {:>9} {:>9} {:>11} {:>6} {:>9} {:>8} {:>12}",
        "group", "notified", "fixed", "rate", "reported", "not_fixed", "unrch", "false_pos", "repeated", "median_days"
    );
    for group in report.groups.iter().chain(std::iter::once(&report.total)) {
        println!(
            "{:<28} {:>8} {:>6} {:>8.1}% {:>9} {:>11} {:>6} {:>9} {:>8} {:>12}",
            group.key,
            group.notified,
            group.fixed,
            group.remediation_rate * 100.0,
            group.reported_fixed,
            group.not_fixed,
            group.unreachable,
            group.false_positive,
            group.repeatedly_notified,
            group.median_days_to_fix.map(|d| format!("{d:.0}")).unwrap_or_else(|| "-".into())
        );
    }
    let curve: Vec<String> =
        report.survival.iter().take(31).map(|p| format!("d{}:{:.0}%", p.day, p.unfixed * 100.0)).collect();
    println!("still unfixed by day: {}", curve.join(" "));
    println!("notified repeatedly without change: {}", report.repeated_without_change.len());
    Ok(ExitCode::SUCCESS)
}
