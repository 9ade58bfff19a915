//! `botscope demo`: the whole system on the lab, in one process, then the dashboard.
//!
//! Every step calls the same library session or function as the command an operator runs (with a
//! configuration built in `steps`, never a command line parsed again), against one embedded SQLite
//! store in the demo directory. Everything that sends
//! packets targets loopback: the lab fleet listens on 127.16.0.0/12, the lab's C&C servers on
//! other 127/8 addresses, and the survey and liveness run with `--lab`.

mod steps;
mod world;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use botscope_center::notify::{self, GenerateConfig, Period, PeriodKind};
use botscope_center::tokens::{self, Role};
use botscope_lab::fleet::{FleetSpec, PortMap};
use botscope_model::Kind;
use botscope_store::Store;
use botscope_survey::catalog::DeviceCatalog;
use clap::Args;

use crate::commands::center::PagesArgs;
use crate::settings::Settings;
use steps::SurveyStep;
use world::{Fleet, LabServer, path_str};

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

pub async fn run(args: DemoArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let listen: SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {}: expected ADDR:PORT", args.listen))?;
    world::prepare_dir(&args.dir)?;
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
    let today = chrono::Utc::now().date_naive();
    // Two lab days ending the day before yesterday, so every view has a few days of history.
    let first_day = today - chrono::Duration::days(3);
    let start = first_day.and_hms_opt(0, 0, 0).context("midnight")?.and_utc().timestamp();
    let mut steps = Steps { total: 14, done: 0, started: Instant::now() };
    eprintln!("botscope demo: seed {}, {} devices, data in {}", args.seed, args.devices, dir.display());

    steps.next("ISP registry and routing table (data/examples)");
    std::fs::write(file("pfx2as.txt"), include_str!("../../../../../data/examples/pfx2as.txt"))?;
    std::fs::write(file("isps.toml"), include_str!("../../../../../data/examples/isps.toml"))?;
    let store = settings.open_store().await?;
    steps::isps(&store, &file("isps.toml"), &file("pfx2as.txt")).await?;

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
    steps::survey(
        &store,
        SurveyStep {
            scope_file: &file("scope.txt"),
            ports: &ports,
            recheck: false,
            out: file("findings.jsonl"),
            audit: Some(file("audit.jsonl")),
        },
    )
    .await?;

    steps.next("lab darknet: two days of traffic to 127.224.0.0/16");
    let pool = super::lab::vulnerable_pool(args.seed, args.devices as usize)?;
    {
        let spec = botscope_lab::darknet::DarknetSpec {
            seed: args.seed,
            darknet: "127.224.0.0/16".parse().context("constant")?,
            hours: 48,
            sources: 150,
            start: start as u64,
            intensity: 1.0,
            shape: botscope_lab::darknet::Shape::Lab,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(file("darknet.pcap"))?);
        let (truth, _) = botscope_lab::darknet::generate(&spec, &pool, &mut out)?;
        out.flush()?;
        world::write_json_lines(&file("darknet-truth.jsonl"), &truth)?;
    }
    steps.next("telescope: infected hosts, scanners, backscatter per hour");
    steps::telescope(&store, &file("darknet.pcap"), "127.224.0.0/16", &file("activity.jsonl")).await?;

    steps.next("lab flows: two days of an ISP's NetFlow");
    {
        let spec = botscope_lab::flows::FlowsSpec {
            seed: args.seed,
            subscribers: 300,
            days: 2,
            botnets: 3,
            start,
            infected_share: 0.08,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(file("flows.jsonl"))?);
        let (truth, _) = botscope_lab::flows::generate(&spec, &pool, &mut |hour| {
            for flow in hour {
                serde_json::to_writer(&mut out, &botscope_flow::FlowLine::from(flow))?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
        out.flush()?;
        world::write_json_lines(&file("flows-truth.jsonl"), &truth)?;
    }
    steps.next("flow analysis at two ISPs, seeded with the telescope's bots");
    for sensor in ["isp-hikari", "isp-sakura"] {
        let out = file(&format!("cnc-{sensor}.jsonl"));
        steps::flow_analysis(&store, &file("flows.jsonl"), &file("activity.jsonl"), sensor, &out).await?;
    }

    steps.next("an outside feed (a lab stand-in for ThreatFox, 36 hours behind)");
    let servers = world::truth_servers(&file("flows-truth.jsonl"))?;
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
    steps::feed(&store, &file("lab-feed.csv"), "lab-feed").await?;

    steps.next("correlation into botnets with serial numbers");
    steps::correlate(&store, 12 * 3600).await?;

    steps.next("C&C liveness: each botnet's newest server answers, moved-away ones do not");
    let mut newest: std::collections::BTreeMap<&str, (IpAddr, u16, chrono::DateTime<chrono::Utc>)> = Default::default();
    for LabServer { ip, port, botnet, from } in &servers {
        let slot = newest.entry(botnet.as_str()).or_insert((*ip, *port, *from));
        if *from > slot.2 {
            *slot = (*ip, *port, *from);
        }
    }
    let live: Vec<(IpAddr, u16)> = newest.values().map(|(ip, port, _)| (*ip, *port)).collect();
    let listeners = world::alive_servers(&live).await?;
    steps::liveness(&store).await?;
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
    steps::survey(
        &store,
        SurveyStep {
            scope_file: &file("scope.txt"),
            ports: "",
            recheck: true,
            out: file("recheck.jsonl"),
            audit: None,
        },
    )
    .await?;
    fleet_run.stop().await;
    world::isps_answer(&store).await?;

    steps.next("STIX 2.1 export into the TAXII collection 'shared'");
    steps::share(&store, &file("bundle.json")).await?;

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
    world::write_private(&file("tokens.txt"), &lines)?;
    let counts = world::summary(&store).await?;
    eprintln!("done in {:.0} s: {counts}", steps.started.elapsed().as_secs_f64());
    eprintln!("store: {db}");

    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    // Open on loopback only: on any other address the dashboard asks for the admin token.
    let pages = args.pages.config(address.ip().is_loopback(), &settings.config.serve)?;
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
