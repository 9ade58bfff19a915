//! `botscope demo`: the whole system on the lab, in one process, then the dashboard.
//!
//! Every step is the same command an operator runs (parsed from the same command line and run by
//! the same code), against one embedded SQLite store in the demo directory. Everything that sends
//! packets targets loopback: the lab fleet listens on 127.16.0.0/12, the lab's C&C servers on
//! other 127/8 addresses, and the survey and liveness run with `--lab`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use botscope_center::notify::{self, GenerateConfig, Period, PeriodKind};
use botscope_center::tokens::{self, Role};
use botscope_lab::fleet::{self, FleetSpec, PortMap};
use botscope_lab::serve;
use botscope_model::Kind;
use botscope_store::Store;
use botscope_survey::catalog::{DeviceCatalog, Dictionary};
use clap::{Args, Parser};

use crate::Settings;
use crate::cli::{Cli, Command};
use crate::commands::center::PagesArgs;
use crate::commands::lab::LabCommand;

const DEMO_ABOUT: &str = "Run botscope end to end on the lab, in one process, then serve the dashboard.

From one --seed the lab makes one small world on loopback: an ISP registry, a fleet of emulated IoT \
devices (some with factory passwords), two days of darknet traffic in which the infected ones scan, \
and two days of ISP flows in which they talk to their C&C servers (one botnet moves to a new server \
halfway, another appears late). The demo then runs, in order: the survey, the telescope, two ISPs' \
flow analysers, correlation into botnets, an outside feed, C&C liveness probes, the daily and \
monthly notifications, a re-survey after three owners fixed their devices, and a STIX export to the \
TAXII collection, all into DIR/botscope.db. Finally it serves the dashboard, the ISP portal and the \
self-check page until Ctrl-C.

Nothing leaves the machine: every packet goes to 127.0.0.0/8. The store is always DIR/botscope.db \
(--db is not used). Sign-in tokens for the ISP portal are written to DIR/tokens.txt. Running the \
demo again in the same directory starts it afresh.";

const DEMO_EXAMPLES: &str = "\
Examples:
  botscope demo
  botscope demo --seed 3 --dir /tmp/demo --listen 127.0.0.1:9090
  botscope demo --no-serve && botscope --db botscope-demo/botscope.db botnets list";

/// Marks a directory as the demo's own, so a second run may clear it.
const MARKER: &str = ".botscope-demo";

/// `botscope demo`.
#[derive(Debug, Args)]
#[command(long_about = DEMO_ABOUT, after_help = DEMO_EXAMPLES)]
pub struct DemoArgs {
    /// Seed of the lab world: the same seed gives the same devices, bots, botnets and traffic
    #[arg(long, default_value_t = 7, value_name = "S")]
    pub seed: u64,
    /// Directory for the store, the lab's files and truth, and the tokens
    #[arg(long, default_value = "botscope-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where the dashboard listens
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Build the data, then exit without serving
    #[arg(long)]
    pub no_serve: bool,
    /// Emulated devices in the lab fleet
    #[arg(long, default_value_t = 200, value_name = "N", value_parser = clap::value_parser!(u32).range(10..=5000))]
    pub devices: u32,
    #[command(flatten)]
    pub pages: PagesArgs,
}

/// Lab device ports: unprivileged, so the demo needs no root.
const PORTS: &str = "telnet=21023,ssh=21022,http=21080,https=21043,cwmp=21047,adb=21055";

struct Steps {
    total: usize,
    done: usize,
    started: Instant,
}

impl Steps {
    fn next(&mut self, what: &str) {
        self.done += 1;
        eprintln!("[{}/{}] {what} ({:.0} s)", self.done, self.total, self.started.elapsed().as_secs_f64());
    }
}

/// Runs a botscope command line against the demo's store, in this process.
async fn step(settings: &Settings, words: &[&str]) -> anyhow::Result<()> {
    let argv = std::iter::once("botscope").chain(words.iter().copied());
    let cli = Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("demo step {words:?}: {e}"))?;
    let code = Box::pin(crate::cli::dispatch(cli.command, settings, true)).await?;
    anyhow::ensure!(code == ExitCode::SUCCESS, "demo step {} did not succeed", words.join(" "));
    Ok(())
}

fn lab_command(words: &[&str]) -> anyhow::Result<LabCommand> {
    let argv = std::iter::once("botscope").chain(words.iter().copied());
    match Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("demo step {words:?}: {e}"))?.command {
        Command::Lab(command) => Ok(command),
        _ => unreachable!("the words start with lab"),
    }
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_none();
        anyhow::ensure!(
            empty || dir.join(MARKER).exists(),
            "{} exists and is not a demo directory; give another --dir",
            dir.display()
        );
        if !empty {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by botscope demo; it clears this directory when run again\n")?;
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))
}

fn read_json_lines(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// A lab C&C server, from the flows' truth.
struct LabServer {
    ip: IpAddr,
    port: u16,
    botnet: String,
    /// When the botnet started using it.
    from: chrono::DateTime<chrono::Utc>,
}

/// The lab's C&C servers from the flows' truth.
fn truth_servers(path: &Path) -> anyhow::Result<Vec<LabServer>> {
    let mut servers = Vec::new();
    for line in read_json_lines(path)? {
        if line["kind"] == "cnc" {
            let ip: IpAddr = line["ip"].as_str().context("truth cnc ip")?.parse()?;
            let port = line["port"].as_u64().context("truth cnc port")? as u16;
            let botnet = line["botnet"].as_str().unwrap_or("").to_string();
            let from = line["from"].as_str().context("truth cnc from")?.parse()?;
            servers.push(LabServer { ip, port, botnet, from });
        }
    }
    Ok(servers)
}

/// A running lab fleet, stopped when dropped.
struct Fleet {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fleet {
    async fn start(spec: &FleetSpec, fixed: &[std::net::Ipv4Addr]) -> anyhow::Result<(Fleet, Vec<fleet::Device>)> {
        let mut devices = fleet::build(spec, &DeviceCatalog::shipped(), &Dictionary::shipped())?;
        for device in devices.iter_mut().filter(|d| fixed.contains(&d.ip)) {
            device.fix_password();
        }
        let lab = serve::bind(devices.clone(), spec.seed, 512).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(lab.run(async {
            let _ = stopped.await;
        }));
        Ok((Fleet { stop: Some(stop), task }, devices))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Loopback listeners standing in for the C&C servers still in use: liveness finds them alive.
async fn alive_servers(servers: &[(IpAddr, u16)]) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for (ip, port) in servers {
        anyhow::ensure!(ip.is_loopback(), "lab C&C server {ip} is not on loopback");
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(*ip, *port))
            .await
            .with_context(|| format!("cannot listen on lab C&C server {ip}:{port}"))?;
        tasks.push(tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                drop(connection);
            }
        }));
    }
    Ok(tasks)
}

pub async fn run(args: DemoArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let listen: SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {}: expected ADDR:PORT", args.listen))?;
    prepare_dir(&args.dir)?;
    let dir = args.dir.canonicalize()?;
    let file = |name: &str| dir.join(name);
    let db_path = file("botscope.db");
    let mut settings = Settings {
        config: settings.config.clone(),
        source: settings.source.clone(),
        show_progress: settings.show_progress,
    };
    settings.config.store.url = path_str(&db_path)?.to_string();
    let db = path_str(&db_path)?.to_string();
    let seed = args.seed.to_string();
    let devices = args.devices.to_string();
    let today = chrono::Utc::now().date_naive();
    // Two lab days ending the day before yesterday, so every view has a few days of history.
    let first_day = today - chrono::Duration::days(3);
    let start = format!("{first_day}T00:00:00Z");
    let mut steps = Steps { total: 14, done: 0, started: Instant::now() };
    eprintln!("botscope demo: seed {seed}, {devices} devices, data in {}", dir.display());

    steps.next("ISP registry and routing table (data/examples)");
    std::fs::write(file("pfx2as.txt"), include_str!("../../../../data/examples/pfx2as.txt"))?;
    std::fs::write(file("isps.toml"), include_str!("../../../../data/examples/isps.toml"))?;
    step(
        &settings,
        &["isp", "load", "--pfx2as", path_str(&file("pfx2as.txt"))?, "--registry", path_str(&file("isps.toml"))?],
    )
    .await?;
    let store = settings.open_store().await?;

    steps.next("lab devices on 127.16.0.0/12");
    let spec = FleetSpec {
        count: args.devices as usize,
        seed: args.seed,
        subnet: "127.16.0.0/12".parse().expect("constant"),
        ports: PortMap::parse(PORTS)?,
        misbehaving: 0.0,
    };
    let (fleet_run, fleet) = Fleet::start(&spec, &[]).await?;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(file("devices-truth.jsonl"))?);
        for device in &fleet {
            serde_json::to_writer(&mut out, &device.truth())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let scope: String = fleet.iter().map(|d| format!("{}/32\n", d.ip)).collect();
    std::fs::write(file("scope.txt"), scope)?;
    let ports = super::lab::port_list(&fleet);

    steps.next("survey: logins with the dictionary, model identification");
    step(
        &settings,
        &[
            "survey",
            "--lab",
            "--scope-file",
            path_str(&file("scope.txt"))?,
            "--ports",
            &ports,
            "--rate",
            "5000",
            "--max-attempts-per-host",
            "2000",
            "--sensor",
            "survey-1",
            "--out",
            path_str(&file("findings.jsonl"))?,
            "--audit",
            path_str(&file("audit.jsonl"))?,
        ],
    )
    .await?;

    steps.next("lab darknet: two days of traffic to 127.224.0.0/16");
    let darknet = lab_command(&[
        "lab",
        "darknet",
        "--seed",
        &seed,
        "--fleet-count",
        &devices,
        "--hours",
        "48",
        "--sources",
        "150",
        "--start",
        &start,
        "--out",
        path_str(&file("darknet.pcap"))?,
        "--truth",
        path_str(&file("darknet-truth.jsonl"))?,
    ])?;
    if let LabCommand::Darknet(lab_args) = darknet {
        tokio::task::spawn_blocking(move || super::lab::darknet(lab_args)).await??;
    }
    steps.next("telescope: infected hosts, scanners, backscatter per hour");
    step(
        &settings,
        &[
            "telescope",
            "--pcap",
            path_str(&file("darknet.pcap"))?,
            "--darknet",
            "127.224.0.0/16",
            "--sensor",
            "darknet-a",
            "--out",
            path_str(&file("activity.jsonl"))?,
        ],
    )
    .await?;

    steps.next("lab flows: two days of an ISP's NetFlow");
    let flows = lab_command(&[
        "lab",
        "flows",
        "--seed",
        &seed,
        "--fleet-count",
        &devices,
        "--days",
        "2",
        "--botnets",
        "3",
        "--subscribers",
        "300",
        "--start",
        &start,
        "--out",
        path_str(&file("flows.jsonl"))?,
        "--truth",
        path_str(&file("flows-truth.jsonl"))?,
    ])?;
    if let LabCommand::Flows(lab_args) = flows {
        tokio::task::spawn_blocking(move || super::lab::flows(lab_args)).await??;
    }
    steps.next("flow analysis at two ISPs, seeded with the telescope's bots");
    for sensor in ["isp-hikari", "isp-sakura"] {
        step(
            &settings,
            &[
                "flow",
                "analyze",
                "--input",
                path_str(&file("flows.jsonl"))?,
                "--seeds",
                path_str(&file("activity.jsonl"))?,
                "--subscribers",
                "127.16.0.0/12",
                "--sensor",
                sensor,
                "--out",
                path_str(&file(&format!("cnc-{sensor}.jsonl")))?,
            ],
        )
        .await?;
    }

    steps.next("an outside feed (a lab stand-in for ThreatFox, 36 hours behind)");
    let servers = truth_servers(&file("flows-truth.jsonl"))?;
    let mut feed =
        String::from("# lab feed in ThreatFox's CSV format: each C&C server listed 36 hours after it went live\n");
    for (at, LabServer { ip, port, from, .. }) in servers.iter().enumerate() {
        let listed = (*from + chrono::Duration::hours(36)).min(chrono::Utc::now());
        feed.push_str(&format!(
            "\"{}\", \"{}\", \"{ip}:{port}\", \"ip:port\", \"botnet_cc\", \"elf.mirai\", \"\", \"Mirai\", \"\", \"75\", \"\", \"\", \"0\", \"lab\"\n",
            listed.format("%Y-%m-%d %H:%M:%S"),
            900_000 + at
        ));
    }
    std::fs::write(file("lab-feed.csv"), feed)?;
    step(
        &settings,
        &["feeds", "import", "--format", "threatfox-csv", "--source", "lab-feed", path_str(&file("lab-feed.csv"))?],
    )
    .await?;

    steps.next("correlation into botnets with serial numbers");
    step(&settings, &["correlate", "--window", "12h"]).await?;

    steps.next("C&C liveness: each botnet's newest server answers, moved-away ones do not");
    let mut newest: std::collections::BTreeMap<&str, (IpAddr, u16, chrono::DateTime<chrono::Utc>)> = Default::default();
    for LabServer { ip, port, botnet, from } in &servers {
        let slot = newest.entry(botnet.as_str()).or_insert((*ip, *port, *from));
        if *from > slot.2 {
            *slot = (*ip, *port, *from);
        }
    }
    let live: Vec<(IpAddr, u16)> = newest.values().map(|(ip, port, _)| (*ip, *port)).collect();
    let listeners = alive_servers(&live).await?;
    step(&settings, &["liveness", "--once", "--lab", "--rate", "200", "--timeout", "2s", "--sensor", "liveness-1"])
        .await?;
    for task in listeners {
        task.abort();
    }

    steps.next("notifications: daily infected reports and the monthly vulnerable one");
    let catalog = DeviceCatalog::shipped();
    let guide = super::notify::guide_of(&catalog);
    for offset in 0..2 {
        let day = first_day + chrono::Duration::days(offset);
        let config = GenerateConfig {
            kind: PeriodKind::Day,
            period: Some(Period::parse(PeriodKind::Day, &day.to_string())?),
            isps: None,
            // The morning after, when a daily report goes out.
            now: (day + chrono::Duration::days(1)).and_hms_opt(6, 0, 0).expect("valid").and_utc(),
            new_only: false,
            dry_run: false,
        };
        notify::generate(&store, &config, &guide).await?;
    }
    let config = GenerateConfig {
        kind: PeriodKind::Month,
        period: None,
        isps: None,
        now: chrono::Utc::now(),
        new_only: false,
        dry_run: false,
    };
    notify::generate(&store, &config, &guide).await?;

    steps.next("ten owners fix their devices; the re-survey checks every notified case");
    let cases = botscope_store::all_records(
        &store,
        botscope_store::RecordQuery { kind: Some(Kind::Notification), ..Default::default() },
    )
    .await?;
    let mut fixable: Vec<std::net::Ipv4Addr> = cases
        .iter()
        .filter_map(|r| match r {
            botscope_model::Record::Notification(n)
                if matches!(
                    n.reason,
                    botscope_model::NotificationReason::DefaultCredential
                        | botscope_model::NotificationReason::NoAuthentication
                ) =>
            {
                match n.ip {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                }
            }
            _ => None,
        })
        .collect();
    fixable.sort_unstable();
    fixable.dedup();
    let fixed: Vec<std::net::Ipv4Addr> =
        fixable.iter().copied().step_by((fixable.len() / 10).max(1)).take(10).collect();
    fleet_run.stop().await;
    let (fleet_run, _) = Fleet::start(&spec, &fixed).await?;
    step(
        &settings,
        &[
            "survey",
            "--lab",
            "--recheck",
            "--scope-file",
            path_str(&file("scope.txt"))?,
            "--rate",
            "5000",
            "--sensor",
            "survey-1",
            "--out",
            path_str(&file("recheck.jsonl"))?,
        ],
    )
    .await?;
    fleet_run.stop().await;
    isps_answer(&store).await?;

    steps.next("STIX 2.1 export into the TAXII collection 'shared'");
    step(&settings, &["share", "stix", "--out", path_str(&file("bundle.json"))?, "--publish", "shared"]).await?;

    steps.next("sign-in tokens for the ISP portal");
    let mut lines =
        String::from("# botscope demo sign-in tokens (keep them secret; they work only on this demo's store)\n");
    let (token, row) = tokens::issue(Role::Admin, None, "demo-analyst", &[], chrono::Utc::now())?;
    store.put_token(&row).await?;
    lines.push_str(&format!("admin (dashboard, every ISP)\t{token}\n"));
    for isp in store.isps().await? {
        let (token, row) =
            tokens::issue(Role::Isp, Some(&isp.handle), &format!("{}-portal", isp.handle), &[], chrono::Utc::now())?;
        store.put_token(&row).await?;
        lines.push_str(&format!("isp {}\t{token}\n", isp.handle));
    }
    write_private(&file("tokens.txt"), &lines)?;
    let counts = summary(&store).await?;
    eprintln!("done in {:.0} s: {counts}", steps.started.elapsed().as_secs_f64());
    eprintln!("store: {db}");

    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    // Open on loopback only: on any other address the dashboard asks for the admin token.
    let pages = args.pages.config(address.ip().is_loopback())?;
    let open = pages.open_dashboard;
    let state = botscope_web::AppState::new(store.clone(), botscope_web::Limits::default()).with_pages(pages);
    eprintln!("dashboard:   http://{address}/");
    eprintln!("self-check:  http://{address}/check");
    eprintln!("ISP portal:  http://{address}/login (tokens in {})", file("tokens.txt").display());
    if !open {
        eprintln!("not on loopback: the dashboard needs the admin token from tokens.txt");
    } else if !address.ip().is_loopback() {
        tracing::warn!(%address, "--open-dashboard on an address others can reach: anyone there sees every ISP's picture");
    }
    eprintln!("press Ctrl-C to stop");
    botscope_web::serve(listener, state, crate::stop::shutdown_signal()).await.context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Each ISP reports what it did about some infected cases (a re-survey cannot judge those):
/// a few contacted, one unreachable, one it says is fixed, one false positive.
async fn isps_answer(store: &botscope_store::AnyStore) -> anyhow::Result<()> {
    use botscope_model::{NotificationReason, NotificationStatus, OutcomeSource, Record};
    let records = botscope_store::all_records(
        store,
        botscope_store::RecordQuery { kind: Some(Kind::Notification), ..Default::default() },
    )
    .await?;
    let mut by_isp: std::collections::BTreeMap<String, Vec<botscope_model::Notification>> = Default::default();
    for record in records {
        if let Record::Notification(case) = record
            && case.reason == NotificationReason::Infected
        {
            by_isp.entry(case.isp.clone()).or_default().push(case);
        }
    }
    let answers = [
        NotificationStatus::Contacted,
        NotificationStatus::Contacted,
        NotificationStatus::Contacted,
        NotificationStatus::Unreachable,
        NotificationStatus::Fixed,
        NotificationStatus::FalsePositive,
    ];
    for cases in by_isp.values_mut() {
        cases.sort_by_key(|c| (c.ip, c.created_at));
        for (case, status) in cases.iter_mut().zip(answers) {
            notify::record_outcome(store, case, status, OutcomeSource::Isp, Some("demo: the ISP's answer".into()))
                .await?;
        }
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn summary(store: &impl Store) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for (kind, name) in [
        (Kind::Finding, "findings"),
        (Kind::Activity, "activity records"),
        (Kind::Cnc, "C&C reports"),
        (Kind::Botnet, "botnets"),
        (Kind::Notification, "notification cases"),
        (Kind::Outcome, "outcomes"),
    ] {
        parts.push(format!("{} {name}", store.count_records(Some(kind)).await?));
    }
    Ok(parts.join(", "))
}
