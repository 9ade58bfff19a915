//! The centre's commands: `serve`, `token`, `correlate`, `botnets`.

use std::process::ExitCode;

use anyhow::Context;
use botscope_center::correlate::{self, CorrelateConfig};
use botscope_center::tokens::{self, Role};
use botscope_model::{Botnet, Record};
use botscope_store::Store;
use clap::{Args, Subcommand};

use crate::settings::Settings;

const SERVE_ABOUT: &str = "Run the centre: the HTTP API sensors post records to and ISPs read their \
notifications from (docs/api.md), with correlation run periodically.

Every /api/v1 route but /health (liveness) and /ready (the store answers, its schema is current) \
needs a token (`botscope token create`). /metrics is the Prometheus exposition (requests, \
latencies, connections, ingest, correlation), and every request is logged at info (target \
botscope::access; filter with RUST_LOG) (docs/center.md, Monitoring the centre). Ingest batches are committed \
before they are acknowledged; too many waiting batches get 503 with Retry-After instead of an \
unbounded queue. A connection that does not send its request head within --header-timeout is \
closed, and beyond --max-connections new connections get 503 at once (docs/api.md, Connections \
and limits). Ctrl-C or SIGTERM stops accepting, finishes the requests in flight and exits.

The same server serves the web pages (docs/web.md): the analysts' dashboard at / (sign in at /login with an admin token, or --open-dashboard where nobody else can reach the server), each ISP's portal at /portal (sign in with the ISP's token) and the public self-check page at /check, which answers only for the visitor's own address.";

const SERVE_EXAMPLES: &str = "\
Examples:
  botscope token create --role sensor --label survey-1
  botscope serve --listen 127.0.0.1:8080
  botscope --db postgres://botscope@127.0.0.1/botscope serve --correlate-every 10m
  botscope serve --listen 127.0.0.1:8080 --client-ip-header X-Forwarded-For --trusted-proxy 127.0.0.1
  curl -H \"Authorization: Bearer $TOKEN\" --data-binary @findings.jsonl http://127.0.0.1:8080/api/v1/ingest";

/// `botscope serve`.
#[derive(Debug, Args)]
#[command(about = "Run the centre: the HTTP API for sensors and ISPs, with periodic correlation", long_about = SERVE_ABOUT, after_help = SERVE_EXAMPLES)]
pub struct ServeArgs {
    /// Address and port to listen on [default: serve.listen in botscope.toml, 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Run correlation this often (0 = never; run `botscope correlate` yourself) [default:
    /// serve.correlate_every, 10m]
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub correlate_every: Option<u64>,

    /// Correlation window (see `botscope correlate --help`) [default: serve.window, 1d]
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub window: Option<u64>,

    /// How long after a window's end correlation waits for late reports [default: serve.settle, 1h]
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub settle: Option<u64>,

    /// Earlier windows a botnet may be matched across (see `botscope correlate --help`) [default:
    /// serve.lookback, 7]
    #[arg(long, value_name = "WINDOWS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lookback: Option<u32>,

    /// Largest request body in MiB (ingest batches; gzip bodies may decompress to 8 times this)
    /// [default: serve.max_body_mib, 16]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_body_mib: Option<u32>,

    /// Ingest batches waiting for the store before new ones are told to retry (503) [default:
    /// serve.max_waiting, 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_waiting: Option<u64>,

    /// How long a client has to send a request's head (line and headers), on a new connection and
    /// between requests on a kept-alive one, before the connection is closed [default:
    /// serve.header_timeout, 10s]
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub header_timeout: Option<u64>,

    /// Connections served at once; a new one beyond this is answered 503 and closed at once
    /// [default: serve.max_connections, 1024]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,

    /// How long the status of a TAXII POST can be read (then it is unknown: 404) [default:
    /// serve.taxii_status_ttl, 1d]
    #[arg(long, value_name = "DURATION", value_parser = super::duration_arg)]
    pub taxii_status_ttl: Option<u64>,

    /// TAXII POST statuses held in all; the oldest are dropped first [default:
    /// serve.taxii_statuses, 10000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub taxii_statuses: Option<u32>,

    /// TAXII POST statuses held per token; its oldest are dropped first [default:
    /// serve.taxii_statuses_per_token, 1000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub taxii_statuses_per_token: Option<u32>,

    #[command(flatten)]
    pub pages: PagesArgs,
}

/// How the web pages behave (`serve` and `demo`).
#[derive(Debug, Clone, Args)]
pub struct PagesArgs {
    /// Show the analysts' dashboard without sign-in (only for a centre nobody else can reach);
    /// otherwise it needs an admin token at /login
    #[arg(long)]
    pub open_dashboard: bool,

    /// Header in which a trusted reverse proxy passes the visitor's address to the self-check page
    /// [default: serve.client_ip_header, none]
    #[arg(long, value_name = "NAME")]
    pub client_ip_header: Option<String>,

    /// A proxy (CIDR or address) whose --client-ip-header is believed; repeatable (replaces
    /// serve.trusted_proxies)
    #[arg(long, value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,

    /// Days the self-check page looks back [default: serve.check_days, 30]
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=366))]
    pub check_days: Option<u32>,

    /// Self-check answers per visitor address and minute [default: serve.check_rate, 20]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub check_rate: Option<u32>,

    /// Mark sign-in cookies Secure: people reach the pages over HTTPS (through a TLS proxy)
    /// [default: serve.secure_cookies, false]
    #[arg(long)]
    pub secure_cookies: bool,
}

impl PagesArgs {
    /// The web crate's settings, with the shipped remediation guides.
    /// `--open-dashboard` stays a flag only: a key in a shared file should not open every ISP's
    /// picture to whoever reaches the server.
    pub fn config(
        &self,
        open_dashboard: bool,
        serve: &crate::config::ServeConfig,
    ) -> anyhow::Result<botscope_web::PagesConfig> {
        use botscope_web::pages::check::{Guide, Guides};
        let header = self.client_ip_header.as_ref().or(serve.client_ip_header.as_ref());
        let proxies = if self.trusted_proxy.is_empty() { &serve.trusted_proxies } else { &self.trusted_proxy };
        anyhow::ensure!(
            header.is_none() || !proxies.is_empty(),
            "--client-ip-header (serve.client_ip_header) needs --trusted-proxy (serve.trusted_proxies): \
             the header is believed only from the proxies named"
        );
        let client_ip_header = header
            .map(String::as_str)
            .map(|name| {
                name.parse::<botscope_web::HeaderName>()
                    .map_err(|_| anyhow::anyhow!("--client-ip-header {name}: not a header name"))
            })
            .transpose()?;
        let catalog = botscope_survey::catalog::DeviceCatalog::shipped();
        let guides = Guides::new(catalog.models().iter().map(|m| Guide {
            vendor: m.vendor.clone(),
            model: m.model.clone(),
            en: m.remediation.en.clone(),
            ja: m.remediation.ja.clone(),
        }));
        Ok(botscope_web::PagesConfig {
            open_dashboard: open_dashboard || self.open_dashboard,
            client_ip_header,
            trusted_proxies: super::parse_prefixes(proxies, "--trusted-proxy (serve.trusted_proxies)")?,
            check_days: self.check_days.unwrap_or(serve.check_days.get() as u32),
            check_per_minute: self.check_rate.unwrap_or(serve.check_rate.get() as u32),
            guides,
            secure_cookies: self.secure_cookies || serve.secure_cookies,
        })
    }
}

/// `botscope token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once, as the last word of the last line
    #[command(
        after_help = "Examples:\n  botscope token create --role sensor --label darknet-a\n  botscope token create --role sensor --label isp-hikari --sensor isp-hikari-2\n  botscope token create --role surveyor --label survey-1\n  botscope token create --role isp --isp hikari-net\n  botscope token create --role admin --label analyst"
    )]
    Create(TokenCreateArgs),
    /// List tokens (ids, roles, labels; never the tokens themselves)
    #[command(
        after_help = "Examples:\n  botscope token list\n  botscope --db postgres://botscope@127.0.0.1/botscope token list"
    )]
    List,
    /// Revoke a token by its id (tok_...)
    #[command(after_help = "Examples:\n  botscope token list\n  botscope token revoke tok_Xf3k9QpL2a")]
    Revoke {
        /// The token's id, from `botscope token list`
        id: String,
    },
}

/// `botscope token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// sensor: posts records; surveyor: posts records and fetches the cases to re-survey; isp: reads
    /// its own notifications and reports outcomes; admin: everything
    #[arg(long, value_name = "ROLE")]
    pub role: Role,
    /// The ISP handle an isp token belongs to
    #[arg(long, value_name = "HANDLE")]
    pub isp: Option<String>,
    /// A name for it. A sensor or surveyor token writes records under this name (records it posts
    /// without a `sensor` field are named after it), so there it must be a sensor name, held by no
    /// other live token [default: the token's id for sensors, else the ISP handle or the role]
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// A further sensor name the token may write records under (repeatable, up to 15): for one
    /// machine that runs several sensors. Each is held by no other live token
    #[arg(long = "sensor", value_name = "NAME")]
    pub sensors: Vec<String>,
}

const CORRELATE_ABOUT: &str = "Tie bots and C&C servers into botnets, per window, with serial numbers.

Bots are the telescope's infected hosts; flow analysers' `cnc` records name (by record id) the seed \
records whose hosts used the server, so the centre learns which bots follow which server without \
an ISP sending an address. Servers of one window whose bot sets overlap (Jaccard >= 0.5) are one \
botnet. A botnet keeps the serial number (BN-YYYY-NNNN) of the earlier botnet, within --lookback \
windows, that shares at least half of the smaller of the two (bots plus servers): so its serial \
survives C&C moves, growth and shrinkage. Splits, merges, new C&C, growth, shrinkage and silence \
are recorded as lifecycle events. Servers reported by several ISPs or also listed by a feed get a \
higher confidence: 1 - product of (1 - each reporter's best score). docs/center.md has the details.

A window is correlated once, after it ended and --settle passed; re-running is safe.";

/// `botscope correlate`.
#[derive(Debug, Args)]
#[command(long_about = CORRELATE_ABOUT, after_help = "Examples:\n  botscope correlate\n  botscope correlate --window 1d --lookback 7 --json\n  botscope botnets list")]
pub struct CorrelateArgs {
    /// Window length (windows start at 00:00 UTC for 1d)
    #[arg(long, default_value = "1d", value_name = "DURATION", value_parser = super::duration_arg)]
    pub window: u64,
    /// Earlier windows a botnet may be matched across
    #[arg(long, default_value_t = 7, value_name = "WINDOWS")]
    pub lookback: usize,
    /// How long after a window's end to wait for late reports
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = super::duration_arg)]
    pub settle: u64,
    /// Print the run's report as JSON
    #[arg(long)]
    pub json: bool,
}

/// `botscope botnets ...`.
#[derive(Debug, Subcommand)]
pub enum BotnetsCommand {
    /// One line per botnet: serial, status, members, C&C servers, reporters
    #[command(after_help = "Examples:\n  botscope botnets list\n  botscope botnets list --json > botnets.jsonl")]
    List {
        /// JSON lines (botnet records) instead of a table
        #[arg(long)]
        json: bool,
    },
    /// One botnet: its C&C history, lifecycle events, reporters and members per window
    #[command(
        after_help = "Examples:\n  botscope botnets show BN-2026-0001\n  botscope botnets show BN-2026-0001 --json"
    )]
    Show {
        /// Serial number, e.g. BN-2026-0001
        serial: String,
        /// The botnet record and its windows as JSON lines
        #[arg(long)]
        json: bool,
    },
}

/// `serve`'s settings: each flag given, else its key in `[serve]` (whose defaults are the
/// documented ones).
struct Served {
    listen: String,
    correlate_every: u64,
    window: u64,
    settle: u64,
    lookback: u32,
    max_body_mib: u32,
    max_waiting: usize,
    header_timeout: u64,
    max_connections: u32,
    taxii_status_ttl: u64,
    taxii_statuses: u32,
    taxii_statuses_per_token: u32,
}

impl Served {
    fn resolve(args: &ServeArgs, config: &crate::config::ServeConfig) -> anyhow::Result<Served> {
        // The configuration's durations were checked when it was read.
        let seconds = |flag: Option<u64>, text: &str| flag.map_or_else(|| super::duration_arg(text), Ok);
        Ok(Served {
            listen: args.listen.clone().unwrap_or_else(|| config.listen.clone()),
            correlate_every: seconds(args.correlate_every, &config.correlate_every).map_err(anyhow::Error::msg)?,
            window: seconds(args.window, &config.window).map_err(anyhow::Error::msg)?,
            settle: seconds(args.settle, &config.settle).map_err(anyhow::Error::msg)?,
            lookback: args.lookback.unwrap_or(config.lookback.get() as u32),
            max_body_mib: args.max_body_mib.unwrap_or(config.max_body_mib.get() as u32),
            max_waiting: args.max_waiting.unwrap_or(config.max_waiting.get()) as usize,
            header_timeout: seconds(args.header_timeout, &config.header_timeout).map_err(anyhow::Error::msg)?,
            max_connections: args.max_connections.unwrap_or(config.max_connections.get() as u32),
            taxii_status_ttl: seconds(args.taxii_status_ttl, &config.taxii_status_ttl).map_err(anyhow::Error::msg)?,
            taxii_statuses: args.taxii_statuses.unwrap_or(config.taxii_statuses.get() as u32),
            taxii_statuses_per_token: args
                .taxii_statuses_per_token
                .unwrap_or(config.taxii_statuses_per_token.get() as u32),
        })
    }
}

/// How often `serve` refreshes the daily roll-ups in the background.
const ROLLUP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// How often `serve` deletes observations past `store.retention_days`.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

pub async fn serve(args: ServeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let served = Served::resolve(&args, &settings.config.serve)?;
    anyhow::ensure!(served.header_timeout >= 1, "--header-timeout (serve.header_timeout) must be at least 1s");
    anyhow::ensure!(served.taxii_status_ttl >= 1, "--taxii-status-ttl (serve.taxii_status_ttl) must be at least 1s");
    let store = settings.open_store().await?;
    let listener = tokio::net::TcpListener::bind(&served.listen)
        .await
        .with_context(|| format!("cannot listen on {}", served.listen))?;
    let limits = botscope_web::Limits {
        max_body: served.max_body_mib as usize * (1 << 20),
        max_line: settings.config.ingest.max_line_bytes.get() as usize,
        max_waiting: served.max_waiting,
        header_timeout: std::time::Duration::from_secs(served.header_timeout),
        max_connections: served.max_connections as usize,
        taxii_status_ttl: std::time::Duration::from_secs(served.taxii_status_ttl),
        taxii_statuses: served.taxii_statuses as usize,
        taxii_statuses_per_token: served.taxii_statuses_per_token as usize,
        ..Default::default()
    };
    let pages = args.pages.config(false, &settings.config.serve)?;
    let address = listener.local_addr()?;
    if pages.open_dashboard && !address.ip().is_loopback() {
        tracing::warn!(%address, "--open-dashboard on an address others can reach: anyone there sees every ISP's picture");
    }
    let state = botscope_web::AppState::new(store.clone(), limits).with_pages(pages);
    tracing::info!(store = %store.describe(), %address, "centre listening on http://{address}/");
    if served.correlate_every > 0 {
        let store = store.clone();
        let metrics = state.metrics.clone();
        let (every, window, settle, lookback) =
            (served.correlate_every, served.window as i64, served.settle as i64, served.lookback as usize);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
            loop {
                tick.tick().await;
                let config =
                    CorrelateConfig { window_secs: window, lookback, settle_secs: settle, now: chrono::Utc::now() };
                let result = correlate::run(&store, &config).await;
                metrics.correlation_finished(result.is_ok());
                match result {
                    Ok(report) if report.windows > 0 => tracing::info!(
                        windows = report.windows,
                        new = report.new_serials.len(),
                        botnets = report.botnets,
                        "correlated"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "correlation failed; trying again next time"),
                }
            }
        });
    }
    {
        // Pages bring the roll-ups up to date before they read them; refreshing in the background
        // as well leaves them little to do (and builds a store's roll-ups after an upgrade).
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ROLLUP_EVERY);
            loop {
                tick.tick().await;
                match state.refresh_rollups().await {
                    Ok(done) if done.days > 0 => {
                        tracing::debug!(days = done.days, records = done.records, "daily roll-ups refreshed")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "refreshing the daily roll-ups failed; trying again later"),
                }
            }
        });
    }
    let keep_days = settings.config.store.retention_days.get() as u32;
    if keep_days > 0 {
        // Every replica may do it: a prune deletes in short batches what is still there.
        let store = state.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                let today = chrono::Utc::now().date_naive();
                match botscope_center::retention::prune(&store, keep_days, today, false, |_, _| {}).await {
                    Ok(done) if done.total() > 0 => {
                        tracing::info!(deleted = done.total(), first_kept = %done.first_kept, "old observations pruned")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "pruning old observations failed; trying again later"),
                }
            }
        });
    }
    botscope_web::serve(listener, state, crate::stop::shutdown_signal()).await.context("the server failed")?;
    tracing::info!("centre stopped");
    Ok(ExitCode::SUCCESS)
}

pub async fn token(command: TokenCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    match command {
        TokenCommand::Create(args) => {
            let writes_records = matches!(args.role, Role::Sensor | Role::Surveyor);
            let label = args.label.clone().or_else(|| args.isp.clone()).unwrap_or_else(|| args.role.to_string());
            let (token, mut row) =
                tokens::issue(args.role, args.isp.as_deref(), &label, &args.sensors, chrono::Utc::now())?;
            if writes_records && args.label.is_none() {
                // Unnamed sensor tokens are named after their own id, which no other token holds.
                row.label = row.id.clone();
            }
            if writes_records {
                let existing = store.tokens().await?;
                let mut names: Vec<&str> = vec![row.label.as_str()];
                names.extend(row.sensors.iter().map(String::as_str));
                let taken = tokens::names_taken(&existing, &names);
                anyhow::ensure!(
                    taken.is_empty(),
                    "sensor name {} is held by another live token (records are told apart by sensor name; revoke that token first, or choose another name)",
                    taken.join(", ")
                );
            }
            store.put_token(&row).await?;
            let label = &row.label;
            eprintln!("made {} token {} ({label}); it is shown only now, keep it secret", row.role, row.id);
            println!("{token}");
        }
        TokenCommand::List => {
            println!("{:<16} {:<7} {:<20} {:<24} {:<20} revoked", "id", "role", "isp", "label", "created");
            for row in store.tokens().await? {
                println!(
                    "{:<16} {:<7} {:<20} {:<24} {:<20} {}",
                    row.id,
                    row.role,
                    row.isp.as_deref().unwrap_or("-"),
                    row.label,
                    row.created_at.format("%Y-%m-%d %H:%M"),
                    row.revoked_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into())
                );
                if !row.sensors.is_empty() {
                    println!("{:<16} also writes as: {}", "", row.sensors.join(", "));
                }
            }
        }
        TokenCommand::Revoke { id } => {
            anyhow::ensure!(store.revoke_token(&id).await?, "no active token {id} (see botscope token list)");
            eprintln!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn correlate(args: CorrelateArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let config = CorrelateConfig {
        window_secs: args.window as i64,
        lookback: args.lookback.max(1),
        settle_secs: args.settle as i64,
        now: chrono::Utc::now(),
    };
    let report = correlate::run(&store, &config).await?;
    if report.windows > 0 {
        // A run from the command line is a backfill or a scheduled job that may have written
        // thousands of botnets: the planner should know them before the pages ask.
        if let Err(error) = store.refresh_statistics().await {
            tracing::warn!("correlation is stored, but the store's statistics were not refreshed: {error}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    tracing::info!(
        windows = report.windows,
        already_done = report.windows_already_done,
        waiting = report.windows_waiting,
        new_serials = report.new_serials.len(),
        continued = report.continued,
        botnets = report.botnets,
        unknown_refs = report.unknown_refs,
        "correlation finished"
    );
    for (reporter, servers) in &report.per_reporter {
        tracing::info!(%reporter, servers, "C&C servers reported");
    }
    for overlap in &report.reporter_overlap {
        tracing::info!(a = %overlap.a, b = %overlap.b, shared = overlap.shared, "C&C servers reported by both");
    }
    if report.other_reporters > 0 {
        tracing::info!(
            reporters = report.other_reporters,
            servers = report.other_reporters_servers,
            "more reporters, summed (only the top {} are named)",
            correlate::TOP_REPORTERS
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn botnets_in(store: &impl Store) -> anyhow::Result<Vec<Botnet>> {
    let mut list: Vec<Botnet> = botscope_store::all_of(store).await?;
    list.sort_by(|a, b| a.serial.cmp(&b.serial));
    Ok(list)
}

pub async fn botnets(command: BotnetsCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let list = botnets_in(&store).await?;
    match command {
        BotnetsCommand::List { json } => {
            if json {
                for botnet in list {
                    println!("{}", Record::Botnet(botnet).to_json_line());
                }
            } else {
                println!(
                    "{:<14} {:<8} {:<8} {:>7}  {:<10} {:<28} reporters",
                    "serial", "status", "family", "members", "confidence", "current C&C"
                );
                for b in &list {
                    let current: Vec<String> = b
                        .cnc
                        .iter()
                        // In use at the end: seen within the hour before the botnet's last sign.
                        .filter(|c| c.last_seen >= b.last_seen - chrono::Duration::hours(1))
                        .map(|c| format!("{}:{}", c.ip, c.port))
                        .collect();
                    println!(
                        "{:<14} {:<8} {:<8} {:>7}  {:<10} {:<28} {}",
                        b.serial,
                        format!("{:?}", b.status).to_lowercase(),
                        b.family.as_deref().unwrap_or("-"),
                        b.members,
                        b.confidence.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into()),
                        current.join(" "),
                        b.reporters.join(",")
                    );
                }
                if list.is_empty() {
                    eprintln!("no botnets yet: ingest telescope and flow records, then run botscope correlate");
                }
            }
        }
        BotnetsCommand::Show { serial, json } => {
            let botnet = list
                .into_iter()
                .find(|b| b.serial == serial)
                .with_context(|| format!("no botnet {serial} (see botscope botnets list)"))?;
            let mut windows: Vec<botscope_model::BotnetWindow> =
                botscope_store::all_of::<botscope_model::BotnetWindow>(&store)
                    .await?
                    .into_iter()
                    .filter(|w| w.serial == serial)
                    .collect();
            windows.sort_by_key(|w| w.window_start);
            if json {
                println!("{}", Record::Botnet(botnet).to_json_line());
                for window in windows {
                    println!("{}", Record::BotnetWindow(window).to_json_line());
                }
            } else {
                println!(
                    "{} ({}), {:?}, first seen {}, last seen {}",
                    botnet.serial,
                    botnet.family.as_deref().unwrap_or("family unknown"),
                    botnet.status,
                    botnet.first_seen,
                    botnet.last_seen
                );
                println!("reported by: {}", botnet.reporters.join(", "));
                println!("C&C servers:");
                for c in &botnet.cnc {
                    println!("  {}:{}/{}  {} .. {}", c.ip, c.port, c.transport.as_str(), c.first_seen, c.last_seen);
                }
                println!("windows:");
                for w in &windows {
                    println!(
                        "  {}  {} bots, {} C&C, confidence {:.2}",
                        w.window_start.format("%Y-%m-%d %H:%M"),
                        w.bots.len(),
                        w.cnc.len(),
                        w.confidence
                    );
                }
                println!("events:");
                for e in &botnet.events {
                    println!("  {}  {}  {}", e.at.format("%Y-%m-%d %H:%M"), e.event.as_str(), e.detail);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
