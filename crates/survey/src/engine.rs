//! A survey run: connect probes over the permuted target space, then, host by host, banner grabs,
//! logins and identification, with every record handed to the caller's channel.
//!
//! Two stages, as NOTICE runs them: the port stage finds open address x port pairs in permuted
//! order; the service stage visits each host that had any, one service after another (so a device
//! never has two survey conversations at once), and writes the host's records when it is done, so
//! every finding carries the identification of the whole device.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use botscope_model::{AuthKind, Device, Finding, FindingIssue, GrabStatus, Record, Service, ServiceObservation};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

use crate::catalog::{Credential, Dictionary, PortEntry, parse_version};
use crate::conn::{self, ConnError, Conversation, Limits, banner_text};
use crate::fingerprint::{Field, Fingerprints, Identity};
use crate::login::{LoginContext, LoginOutcome, Shared};
use crate::modules::{adb, ftp, http, rtsp, ssh, telnet};
use crate::pace::{RateLimiter, SubnetGate};
use crate::scope::Scope;
use crate::targets::{Target, TargetSpace};
use crate::x509::{self, CertificateNames, X509Error};
use crate::{SurveyError, tls};

/// Everything a run is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports to probe and what they speak.
    pub ports: Vec<PortEntry>,
    /// Credential dictionary.
    pub dictionary: Dictionary,
    /// Identification rules and the device catalogue.
    pub fingerprints: Fingerprints,
    /// New connections per second, all stages together.
    pub rate: u32,
    /// Conversations open at once.
    pub concurrency: usize,
    /// Conversations open at once with one /24.
    pub per_subnet_concurrency: usize,
    /// Login attempts per host, all its services together.
    pub max_attempts_per_host: u32,
    /// This worker's shard and the number of shards.
    pub shard: (u64, u64),
    /// Orders the permutation; every shard of a run must use the same seed.
    pub seed: u64,
    /// Per-conversation limits.
    pub limits: Limits,
    /// Lab mode: the scope must hold loopback addresses only (the scope's own check refuses
    /// anything else at every connect).
    pub lab: bool,
    /// Survey round written into records.
    pub round: Option<String>,
    /// Worker name written into records.
    pub sensor: Option<String>,
    /// When set, only these address x port pairs are probed (a re-survey of notified devices),
    /// and only those of them inside the scope.
    pub only: Option<Arc<HashSet<(Ipv4Addr, u16)>>>,
}

/// New connections per second unless told otherwise: polite to networks that have not heard of
/// the survey.
pub const DEFAULT_RATE: u32 = 200;
/// Conversations open at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Conversations with one /24 at once unless told otherwise.
pub const DEFAULT_PER_SUBNET_CONCURRENCY: usize = 4;
/// The permutation's seed unless told otherwise.
pub const DEFAULT_SEED: u64 = 2019;

impl Config {
    /// A run over `ports` with the default pace and limits, and a login budget of the whole
    /// dictionary on every login port (see [`Config::whole_dictionary`]).
    pub fn new(ports: Vec<PortEntry>, dictionary: Dictionary, fingerprints: Fingerprints) -> Config {
        let max_attempts_per_host = Config::whole_dictionary(dictionary.len(), &ports);
        Config {
            ports,
            dictionary,
            fingerprints,
            rate: DEFAULT_RATE,
            concurrency: DEFAULT_CONCURRENCY,
            per_subnet_concurrency: DEFAULT_PER_SUBNET_CONCURRENCY,
            max_attempts_per_host,
            shard: (0, 1),
            seed: DEFAULT_SEED,
            limits: Limits::default(),
            lab: false,
            round: None,
            sensor: None,
            only: None,
        }
    }

    /// The default per-host budget: the whole dictionary on every login port of the run, so that
    /// a device that allows it is tried with every pair on each of its services. What keeps that
    /// polite is the per-host pace (one conversation with a host at a time, a cap per /24, the
    /// global rate), not a budget that would stop before the dictionary's end.
    pub fn whole_dictionary(pairs: usize, ports: &[PortEntry]) -> u32 {
        let login_ports = ports.iter().filter(|p| p.login).count().max(1);
        u32::try_from(pairs.saturating_mul(login_ports)).unwrap_or(u32::MAX)
    }
}

/// Live counters, for progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Address x port pairs in this shard.
    pub probes_total: AtomicU64,
    /// Pairs probed.
    pub probes_done: AtomicU64,
    /// Pairs that accepted a connection.
    pub open: AtomicU64,
    /// Hosts with an open port (known once the port stage ends).
    pub hosts_total: AtomicU64,
    /// Hosts whose services are done.
    pub hosts_done: AtomicU64,
    /// Findings so far.
    pub findings: AtomicU64,
    /// Whether the service stage has begun.
    pub service_stage: AtomicBool,
}

/// What a run did, written as the run's summary (as ZMap's metadata file).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// When the run started.
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Seconds it took.
    pub duration_seconds: f64,
    /// Addresses asked for before exclusions.
    pub addresses_requested: u64,
    /// Addresses in scope after the blocklist and exclusions.
    pub addresses_in_scope: u64,
    /// Ports per address.
    pub ports: Vec<u16>,
    /// This worker's shard (`I/N`, 1-based as on the command line).
    pub shard: String,
    /// Connect probes sent.
    pub probes: u64,
    /// Pairs that accepted a connection.
    pub open: u64,
    /// Services that completed a protocol conversation.
    pub services: u64,
    /// Hosts with at least one open port.
    pub hosts_responsive: u64,
    /// The credential dictionary's version (`version = N` in its file), so a round's results can
    /// be tied to the reviewed revision that produced them; `None` for an unversioned list.
    pub dictionary_version: Option<u32>,
    /// Pairs in the dictionary.
    pub dictionary_pairs: usize,
    /// Login attempts made.
    pub logins_tried: u64,
    /// Login attempts by protocol and outcome (`success`, `failure`, `error`, `unconfirmed`;
    /// `retried`: attempts repeated on a fresh connection after an `error` or `unconfirmed`).
    pub logins: crate::login::Outcomes,
    /// Findings by kind.
    pub findings: HashMap<String, u64>,
    /// Services whose conversation ended early, by status.
    pub grab_errors: HashMap<String, u64>,
    /// Connect probes per second over the port stage.
    pub probe_rate: f64,
    /// Login attempts per second over the service stage.
    pub login_rate: f64,
    /// Seconds spent in the port stage.
    pub port_stage_seconds: f64,
    /// Seconds spent in the service stage.
    pub service_stage_seconds: f64,
    /// Re-survey cases skipped because their address is outside the scope (never probed).
    pub cases_outside_scope: u64,
    /// Checkpoint entries dropped on resume: open pairs or finished hosts outside the scope, or
    /// pairs this run does not survey (never probed).
    pub checkpoint_outside_scope: u64,
    /// Connects the scope check refused during the run. Always 0 unless the plan let a pair
    /// outside the scope through; the refusal stops it before any packet.
    pub connects_refused: u64,
}

pub use crate::output::Output;

/// Where an interrupted run stood, to carry on from.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The open pairs of a completed port stage (the stage is skipped).
    pub open: Option<Vec<Target>>,
    /// Hosts whose records are all written (they are skipped).
    pub done: HashSet<Ipv4Addr>,
}

/// What a run will connect to, decided before the first packet: the port stage's pairs (this
/// shard of the scope's addresses x the ports; with [`Config::only`], only those pairs) or, when a
/// checkpoint holds a finished port stage, its open pairs re-checked against the scope. The
/// service stage visits only pairs the port stage found open, so every connect of a run is to a
/// pair of its plan.
#[derive(Debug, Clone)]
pub struct Plan {
    space: TargetSpace,
    shard: (u64, u64),
    only: Option<Arc<HashSet<(Ipv4Addr, u16)>>>,
    resumed_open: Option<Vec<Target>>,
    done: HashSet<Ipv4Addr>,
    checkpoint_outside_scope: u64,
}

impl Plan {
    /// Plans a run of `config` over `scope`, resuming from `resume`. Checkpoint entries outside
    /// the scope, and open pairs this run does not survey (another port, not a re-survey case),
    /// are dropped and counted: a checkpoint file is not a way to widen the scope.
    pub fn new(scope: &Scope, config: &Config, resume: Resume) -> Result<Plan, SurveyError> {
        if config.lab
            && !scope
                .targets()
                .intervals()
                .iter()
                .all(|i| Ipv4Addr::from(i.first).is_loopback() && Ipv4Addr::from(i.last).is_loopback())
        {
            return Err(SurveyError::LabOutsideLoopback("scope".into()));
        }
        let ports: Vec<u16> = config.ports.iter().map(|p| p.port).collect();
        let space = TargetSpace::new(scope.targets().clone(), ports.clone(), config.seed);
        if space.is_empty() {
            return Err(SurveyError::NothingToSurvey);
        }
        let only = config.only.clone();
        let surveyed = |ip: Ipv4Addr, port: u16| {
            scope.contains(IpAddr::V4(ip))
                && ports.contains(&port)
                && only.as_ref().is_none_or(|only| only.contains(&(ip, port)))
        };
        let mut outside = 0u64;
        let resumed_open = resume.open.map(|open| {
            let before = open.len();
            let kept: Vec<Target> = open.into_iter().filter(|t| surveyed(t.ip, t.port)).collect();
            outside += (before - kept.len()) as u64;
            kept
        });
        let before = resume.done.len();
        let done: HashSet<Ipv4Addr> = resume.done.into_iter().filter(|ip| scope.contains(IpAddr::V4(*ip))).collect();
        outside += (before - done.len()) as u64;
        if outside > 0 {
            tracing::warn!(
                entries = outside,
                "checkpoint entries outside the scope (or not pairs of this run) dropped; they are not probed"
            );
        }
        Ok(Plan { space, shard: config.shard, only, resumed_open, done, checkpoint_outside_scope: outside })
    }

    /// The port stage's pairs, in probe order (none when the checkpoint holds the stage's result).
    pub fn probes(&self) -> impl Iterator<Item = Target> + '_ {
        let (shard, shards) = self.shard;
        let skip = self.resumed_open.is_some();
        self.space
            .shard(shard, shards)
            .take_while(move |_| !skip)
            .filter(|target| self.only.as_ref().is_none_or(|only| only.contains(&(target.ip, target.port))))
    }

    /// About how many pairs [`Plan::probes`] yields.
    pub fn probes_estimate(&self) -> u64 {
        match (&self.resumed_open, &self.only) {
            (Some(_), _) => 0,
            (None, Some(only)) => only.len() as u64,
            (None, None) => self.space.shard_len_estimate(self.shard.1),
        }
    }

    /// The open pairs a checkpoint resumes with, all inside the scope.
    pub fn resumed_open(&self) -> Option<&[Target]> {
        self.resumed_open.as_deref()
    }

    /// Hosts a checkpoint says are finished, all inside the scope.
    pub fn done(&self) -> &HashSet<Ipv4Addr> {
        &self.done
    }

    /// Checkpoint entries dropped as outside the scope or not of this run.
    pub fn checkpoint_outside_scope(&self) -> u64 {
        self.checkpoint_outside_scope
    }
}

/// A re-survey's targets: the cases inside the operator's scope (a case is what a sensor
/// reported, never an authorisation to connect), with the scope narrowed to their addresses.
#[derive(Debug, Clone)]
pub struct Recheck {
    /// The operator's scope narrowed to the addresses of the cases inside it.
    pub scope: Scope,
    /// The address x port pairs to re-survey (for [`Config::only`]).
    pub only: Arc<HashSet<(Ipv4Addr, u16)>>,
    /// Cases outside the scope: skipped, never probed.
    pub outside: Vec<(Ipv4Addr, u16)>,
}

impl Recheck {
    /// Splits `cases` by `scope`.
    pub fn new(scope: &Scope, cases: impl IntoIterator<Item = (Ipv4Addr, u16)>) -> Recheck {
        let mut only = HashSet::new();
        let mut outside = Vec::new();
        for (ip, port) in cases {
            if scope.contains(IpAddr::V4(ip)) {
                only.insert((ip, port));
            } else {
                outside.push((ip, port));
            }
        }
        let addresses = crate::scope::IntervalSet::from_intervals(
            only.iter().map(|(ip, _)| crate::scope::Interval { first: u32::from(*ip), last: u32::from(*ip) }).collect(),
        );
        Recheck { scope: scope.restrict(&addresses), only: Arc::new(only), outside }
    }
}

struct Run {
    config: Config,
    scope: Scope,
    refused: AtomicU64,
    rate: RateLimiter,
    subnets: SubnetGate,
    connections: Arc<Semaphore>,
    shared: Arc<Shared>,
    tls: tokio_rustls::TlsConnector,
    progress: Arc<Progress>,
    services: AtomicU64,
    grab_errors: std::sync::Mutex<HashMap<String, u64>>,
    findings: std::sync::Mutex<HashMap<String, u64>>,
}

/// Runs the survey over `scope`, sending records and audit entries to `out`. Stops early (after the
/// conversations in flight) when `stop` is set.
pub async fn run(
    scope: &Scope,
    config: Config,
    out: mpsc::Sender<Output>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    resume: Resume,
) -> Result<Summary, SurveyError> {
    let started = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let plan = Plan::new(scope, &config, resume)?;
    let ports: Vec<u16> = config.ports.iter().map(|p| p.port).collect();
    let (shard, shards) = config.shard;
    let run = Arc::new(Run {
        scope: scope.clone(),
        refused: AtomicU64::new(0),
        rate: RateLimiter::new(config.rate),
        subnets: SubnetGate::new(config.per_subnet_concurrency),
        connections: Arc::new(Semaphore::new(config.concurrency.max(1))),
        shared: Shared::new(config.seed ^ 0x5eed),
        tls: tls::connector(),
        progress: progress.clone(),
        services: AtomicU64::new(0),
        grab_errors: Default::default(),
        findings: Default::default(),
        config,
    });
    progress.probes_total.store(plan.probes_estimate(), Ordering::Relaxed);

    // Port stage (skipped when a checkpoint holds its result).
    let resumed_open = plan.resumed_open().is_some();
    let open: Arc<std::sync::Mutex<Vec<Target>>> =
        Arc::new(std::sync::Mutex::new(plan.resumed_open().map(<[Target]>::to_vec).unwrap_or_default()));
    let mut tasks = tokio::task::JoinSet::new();
    for target in plan.probes() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let permit = run.connections.clone().acquire_owned().await.expect("semaphore never closed");
        run.rate.acquire().await;
        let (run, open) = (run.clone(), open.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let _subnet = run.subnets.enter(target.ip).await;
            let addr = SocketAddr::new(IpAddr::V4(target.ip), target.port);
            if run.probe(addr).await {
                run.progress.open.fetch_add(1, Ordering::Relaxed);
                open.lock().expect("open list lock").push(target);
            }
            run.progress.probes_done.fetch_add(1, Ordering::Relaxed);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let port_stage = clock.elapsed();
    let probes = progress.probes_done.load(Ordering::Relaxed);

    // Service stage: group by host, keeping discovery order (already a random order).
    let open = std::mem::take(&mut *open.lock().expect("open list lock"));
    let open_count = open.len() as u64;
    if !resumed_open && !stop.load(Ordering::Relaxed) {
        let _ = out.send(Output::PortStageDone(open.clone())).await;
    }
    let mut hosts: Vec<(Ipv4Addr, Vec<u16>)> = Vec::new();
    let mut index: HashMap<Ipv4Addr, usize> = HashMap::new();
    for target in open {
        let slot = *index.entry(target.ip).or_insert_with(|| {
            hosts.push((target.ip, Vec::new()));
            hosts.len() - 1
        });
        hosts[slot].1.push(target.port);
    }
    progress.hosts_total.store(hosts.len() as u64, Ordering::Relaxed);
    progress.service_stage.store(true, Ordering::Relaxed);
    let service_clock = std::time::Instant::now();
    let hosts_responsive = hosts.len() as u64;
    for (ip, mut host_ports) in hosts {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if plan.done().contains(&ip) {
            progress.hosts_done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        host_ports.sort_unstable();
        let permit = run.connections.clone().acquire_owned().await.expect("semaphore never closed");
        let (run, out) = (run.clone(), out.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let _subnet = run.subnets.enter(ip).await;
            run.survey_host(ip, &host_ports, &out).await;
            run.progress.hosts_done.fetch_add(1, Ordering::Relaxed);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let service_stage = service_clock.elapsed();

    let logins = run.shared.attempts.load(Ordering::Relaxed);
    let finished = chrono::Utc::now();
    Ok(Summary {
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: finished.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_seconds: clock.elapsed().as_secs_f64(),
        addresses_requested: scope.requested(),
        addresses_in_scope: scope.targets().len(),
        ports,
        shard: format!("{}/{shards}", shard + 1),
        probes,
        open: open_count,
        services: run.services.load(Ordering::Relaxed),
        hosts_responsive,
        dictionary_version: run.config.dictionary.version(),
        dictionary_pairs: run.config.dictionary.ordered().len(),
        logins_tried: logins,
        logins: run.shared.outcomes(),
        findings: run.findings.lock().expect("lock").clone(),
        grab_errors: run.grab_errors.lock().expect("lock").clone(),
        probe_rate: probes as f64 / port_stage.as_secs_f64().max(1e-9),
        login_rate: logins as f64 / service_stage.as_secs_f64().max(1e-9),
        port_stage_seconds: port_stage.as_secs_f64(),
        service_stage_seconds: service_stage.as_secs_f64(),
        cases_outside_scope: 0,
        checkpoint_outside_scope: plan.checkpoint_outside_scope(),
        connects_refused: run.refused.load(Ordering::Relaxed),
    })
}

/// What one service showed and how its login went.
struct ServiceResult {
    entry: PortEntry,
    status: GrabStatus,
    banner: Option<String>,
    auth: Option<AuthKind>,
    identities: Vec<Identity>,
    login: Option<LoginOutcome>,
    /// An HTTP page that is open without a password (judged once the device is identified).
    open_page: bool,
    /// A management protocol answered as itself.
    management_confirmed: bool,
}

impl Run {
    /// Every connection of the run, probes and conversations alike, opens here, through the
    /// scope-checked connect.
    async fn open(&self, addr: SocketAddr) -> Result<TcpStream, ConnError> {
        let result = conn::connect(&self.scope, addr, &self.config.limits).await;
        if let Err(ConnError::OutOfScope(refused)) = &result {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("a connect outside the scope was refused before any packet");
            tracing::debug!(%refused, "connect refused");
        }
        result
    }

    /// One TCP connect (paced by the port stage's loop), closed at once with a reset so that
    /// neither side keeps TIME_WAIT state.
    async fn probe(&self, addr: SocketAddr) -> bool {
        match self.open(addr).await {
            Ok(stream) => {
                // Linger zero never blocks (the deprecation is about non-zero values): it closes
                // with a reset so neither side keeps TIME_WAIT state for millions of probes.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                true
            }
            Err(_) => false,
        }
    }

    /// A conversation's connection, within the rate.
    async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, ConnError> {
        self.rate.acquire().await;
        self.open(addr).await
    }

    async fn conversation(&self, addr: SocketAddr) -> Result<Conversation<TcpStream>, ConnError> {
        Ok(Conversation::new(self.connect(addr).await?, self.config.limits))
    }

    async fn survey_host(&self, ip: Ipv4Addr, ports: &[u16], out: &mpsc::Sender<Output>) {
        let budget = AtomicU32::new(self.config.max_attempts_per_host);
        let mut results: Vec<ServiceResult> = Vec::new();
        // A device's services usually share one password, and many devices lock every service
        // after a few failures: a pair that worked on one service goes first on the next.
        let mut order: Option<Vec<Credential>> = None;
        for port in ports {
            let Some(entry) = self.config.ports.iter().find(|p| p.port == *port).cloned() else { continue };
            let addr = SocketAddr::new(IpAddr::V4(ip), entry.port);
            let credentials = order.as_deref().unwrap_or(self.config.dictionary.ordered());
            let result = self.survey_service(addr, entry, credentials, &budget, out).await;
            if let Some(LoginOutcome::Found { credential_id, .. }) = &result.login {
                let worked = *credential_id;
                let mut first: Vec<Credential> =
                    self.config.dictionary.ordered().iter().filter(|c| c.id == worked).cloned().collect();
                first.extend(self.config.dictionary.ordered().iter().filter(|c| c.id != worked).cloned());
                order = Some(first);
            }
            results.push(result);
        }
        for record in self.records_for_host(ip, results) {
            if let Record::Finding(finding) = &record {
                self.progress.findings.fetch_add(1, Ordering::Relaxed);
                *self.findings.lock().expect("lock").entry(finding.issue.as_str().to_string()).or_default() += 1;
            }
            let _ = out.send(Output::Record(Box::new(record))).await;
        }
        let _ = out.send(Output::HostDone(ip)).await;
    }

    async fn survey_service(
        &self,
        addr: SocketAddr,
        entry: PortEntry,
        credentials: &[Credential],
        budget: &AtomicU32,
        out: &mpsc::Sender<Output>,
    ) -> ServiceResult {
        let mut result = ServiceResult {
            entry: entry.clone(),
            status: GrabStatus::Success,
            banner: None,
            auth: None,
            identities: Vec::new(),
            login: None,
            open_page: false,
            management_confirmed: false,
        };
        let context = LoginContext::new(addr, entry.protocol, credentials, budget, Some(out), &self.shared);
        let outcome = match entry.protocol {
            Service::Telnet => self.telnet(addr, &entry, &context, &mut result).await,
            Service::Ssh => self.ssh(addr, &entry, &context, &mut result).await,
            Service::Http | Service::Https | Service::Cwmp => self.http(addr, &entry, &context, &mut result).await,
            Service::Adb => self.adb(addr, &mut result).await,
            Service::Ftp => self.ftp(addr, &mut result).await,
            Service::Rtsp => self.rtsp(addr, &mut result).await,
            _ => self.plain(addr, &mut result).await,
        };
        if let Err(error) = outcome {
            tracing::debug!(%addr, protocol = entry.protocol.as_str(), %error, "service not read");
            result.status = error.status();
            *self.grab_errors.lock().expect("lock").entry(result.status.as_str().to_string()).or_default() += 1;
        } else {
            self.services.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn telnet(
        &self,
        addr: SocketAddr,
        entry: &PortEntry,
        context: &LoginContext<'_>,
        result: &mut ServiceResult,
    ) -> Result<(), ConnError> {
        let conversation = self.conversation(addr).await?;
        let (session, greeting) = telnet::greet(conversation).await;
        let greeting = greeting?;
        let banner = banner_text(&greeting.banner);
        if let Some(identity) = self.config.fingerprints.identify(Field::TelnetBanner, &banner) {
            result.identities.push(identity);
        }
        result.banner = Some(banner);
        result.auth = Some(if greeting.prompt == telnet::Prompt::Shell { AuthKind::None } else { AuthKind::Password });
        let session = session.expect("a greeting comes with its session");
        if entry.login || greeting.prompt == telnet::Prompt::Shell {
            let outcome = telnet::login(context, session, greeting.prompt, || self.conversation(addr)).await;
            if let LoginOutcome::Aborted { error, .. } = &outcome {
                tracing::debug!(%addr, %error, "telnet login aborted");
            }
            result.login = Some(outcome);
        } else {
            session.close().await;
        }
        Ok(())
    }

    async fn ssh(
        &self,
        addr: SocketAddr,
        entry: &PortEntry,
        context: &LoginContext<'_>,
        result: &mut ServiceResult,
    ) -> Result<(), ConnError> {
        let mut conversation = self.conversation(addr).await?;
        let (line, preamble) = ssh::read_version(&mut conversation).await?;
        if let Some(identity) = self.config.fingerprints.identify(Field::SshBanner, &line) {
            result.identities.push(identity);
        }
        result.banner = Some(banner_text(line.as_bytes()));
        result.auth = Some(AuthKind::Password);
        if !entry.login {
            conversation.close().await;
            return Ok(());
        }
        let timeout = self.config.limits.read;
        let reconnect = || async {
            let mut next = self.conversation(addr).await?;
            let (_, preamble) = ssh::read_version(&mut next).await?;
            Ok((next, preamble))
        };
        let outcome = ssh::login(context, (conversation, preamble), timeout, reconnect).await;
        if let LoginOutcome::NotFound { tried: 0 } = outcome {
            result.auth = Some(AuthKind::PublicKeyOnly);
        }
        if let LoginOutcome::Aborted { error, .. } = &outcome {
            tracing::debug!(%addr, %error, "ssh login aborted");
        }
        result.login = Some(outcome);
        Ok(())
    }

    async fn http_client(&self, addr: SocketAddr, tls: bool) -> Result<http::Client<Box<dyn conn::Stream>>, ConnError> {
        Ok(self.http_connection(addr, tls).await?.0)
    }

    /// An HTTP client and, over TLS, the certificate's names (or why they could not be read).
    async fn http_connection(
        &self,
        addr: SocketAddr,
        tls: bool,
    ) -> Result<(http::Client<Box<dyn conn::Stream>>, Option<Result<CertificateNames, X509Error>>), ConnError> {
        let stream = self.connect(addr).await?;
        let (stream, names): (Box<dyn conn::Stream>, _) = if tls {
            let session = tls::handshake(&self.tls, stream, self.config.limits.read).await?;
            let names = session
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| x509::certificate_names(leaf.as_ref()));
            (Box::new(session), names)
        } else {
            (Box::new(stream), None)
        };
        Ok((http::Client::new(Conversation::new(stream, self.config.limits), addr.to_string()), names))
    }

    async fn http(
        &self,
        addr: SocketAddr,
        entry: &PortEntry,
        context: &LoginContext<'_>,
        result: &mut ServiceResult,
    ) -> Result<(), ConnError> {
        let tls = entry.protocol == Service::Https;
        let (mut client, certificate) = self.http_connection(addr, tls).await?;
        let response = client.get("/", None).await?;
        let server = response.head.header("server").map(str::to_string);
        let title = response.title();
        let challenge = (response.head.status == 401).then(|| http::challenge(&response.head)).flatten();
        let mut banner = format!("{} {}", response.head.version, response.head.status);
        let mut seen = |field: Field, label: &str, value: &str, banner: &mut String| {
            banner.push_str(&format!("\n{label}: {value}"));
            if let Some(identity) = self.config.fingerprints.identify(field, value) {
                result.identities.push(identity);
            }
        };
        if let Some(server) = &server {
            seen(Field::HttpServer, "Server", server, &mut banner);
        }
        if let Some(value) = response.head.header("www-authenticate") {
            seen(Field::HttpWwwAuthenticate, "WWW-Authenticate", value, &mut banner);
        }
        for (_, cookie) in response.head.headers.iter().filter(|(name, _)| name == "set-cookie").take(8) {
            seen(Field::HttpSetCookie, "Set-Cookie", cookie, &mut banner);
        }
        if let Some(title) = &title {
            seen(Field::HttpTitle, "Title", title, &mut banner);
        }
        match certificate {
            Some(Ok(names)) => {
                seen(Field::X509Subject, "Certificate subject", &names.subject, &mut banner);
                seen(Field::X509Issuer, "Certificate issuer", &names.issuer, &mut banner);
            }
            Some(Err(error)) => banner.push_str(&format!("\nCertificate: unreadable ({error})")),
            None => {}
        }
        let realm = match &challenge {
            Some(http::Challenge::Basic { realm }) => Some(realm.clone()),
            Some(http::Challenge::Digest(digest)) => Some(digest.realm.clone()),
            None => None,
        };
        if let Some(identity) =
            realm.as_deref().and_then(|realm| self.config.fingerprints.identify(Field::HttpRealm, realm))
        {
            result.identities.push(identity);
        }
        result.banner = Some(banner_text(banner.as_bytes()));
        result.management_confirmed = entry.management;
        match challenge {
            Some(challenge) => {
                result.auth = Some(match challenge {
                    http::Challenge::Basic { .. } => AuthKind::Basic,
                    http::Challenge::Digest(_) => AuthKind::Digest,
                });
                if entry.login {
                    let reusable = response.reusable;
                    let first = if reusable {
                        client
                    } else {
                        client.close().await;
                        self.http_client(addr, tls).await?
                    };
                    let outcome = http::login(context, first, challenge, || self.http_client(addr, tls)).await;
                    result.login = Some(outcome);
                } else {
                    client.close().await;
                }
            }
            None if response.head.status == 401 => client.close().await,
            None => {
                let form = response.has_password_form();
                result.auth = Some(if form { AuthKind::Form } else { AuthKind::None });
                result.open_page = (200..300).contains(&response.head.status) && !form && entry.login;
                client.close().await;
            }
        }
        Ok(())
    }

    /// ADB: a CNXN message; a device answers with its own CNXN and a banner naming the product.
    async fn adb(&self, addr: SocketAddr, result: &mut ServiceResult) -> Result<(), ConnError> {
        let mut conversation = self.conversation(addr).await?;
        conversation.send(&adb::host_connect()).await?;
        let mut reply = Vec::new();
        while reply.len() < 24 {
            conversation.read_some(&mut reply).await?;
        }
        if !reply.starts_with(b"CNXN") {
            return Err(ConnError::Protocol("not an ADB reply".into()));
        }
        let length = adb::payload_length(&reply).unwrap_or(0);
        let want = 24 + length.min(4096);
        while reply.len() < want {
            if conversation.read_some(&mut reply).await.is_err() {
                break;
            }
        }
        result.banner = Some(banner_text(&reply[24.min(reply.len())..]));
        result.auth = Some(AuthKind::None);
        result.management_confirmed = true;
        conversation.close().await;
        Ok(())
    }

    /// FTP: the greeting, then `QUIT`. A port that accepts the connection but does not greet like
    /// FTP is still a service that answered (as [`Self::plain`] treats any port): what it sent is
    /// kept as its banner and nothing is identified.
    async fn ftp(&self, addr: SocketAddr, result: &mut ServiceResult) -> Result<(), ConnError> {
        let mut conversation = self.conversation(addr).await?;
        result.management_confirmed = result.entry.management;
        let mut bytes = Vec::new();
        let greeting = loop {
            if conversation.read_some(&mut bytes).await.is_err() {
                break None;
            }
            match ftp::parse_greeting(&bytes) {
                Ok(Some(greeting)) => break Some(greeting),
                Ok(None) => {}
                Err(_) => break None,
            }
        };
        if !bytes.is_empty() {
            result.banner = Some(banner_text(&bytes));
        }
        if let Some(greeting) = greeting {
            for text in greeting.texts() {
                if let Some(identity) = self.config.fingerprints.identify(Field::FtpBanner, text) {
                    result.identities.push(identity);
                    break;
                }
            }
            let _ = conversation.send(b"QUIT\r\n").await;
        }
        conversation.close().await;
        Ok(())
    }

    /// RTSP: one `OPTIONS` request; the reply's `Server` header names the camera's software. A
    /// port that does not answer like RTSP is kept as a service that answered, as FTP's is.
    async fn rtsp(&self, addr: SocketAddr, result: &mut ServiceResult) -> Result<(), ConnError> {
        let mut conversation = self.conversation(addr).await?;
        result.management_confirmed = result.entry.management;
        let mut bytes = Vec::new();
        let head = match conversation.send(&rtsp::options_request(&addr.to_string())).await {
            Err(_) => None,
            Ok(()) => loop {
                if conversation.read_some(&mut bytes).await.is_err() {
                    break None;
                }
                match rtsp::parse_reply(&bytes) {
                    Ok(Some((head, _))) => break Some(head),
                    Ok(None) => {}
                    Err(_) => break None,
                }
            },
        };
        let Some(head) = head else {
            if !bytes.is_empty() {
                result.banner = Some(banner_text(&bytes[..bytes.len().min(512)]));
            }
            conversation.close().await;
            return Ok(());
        };
        let mut banner = format!("{} {}", head.version, head.status);
        if let Some(server) = head.header("server") {
            banner.push_str(&format!("\nServer: {server}"));
            if let Some(identity) = self.config.fingerprints.identify(Field::RtspServer, server) {
                result.identities.push(identity);
            }
        }
        if let Some(challenge) = head.header("www-authenticate") {
            banner.push_str(&format!("\nWWW-Authenticate: {challenge}"));
        }
        result.banner = Some(banner_text(banner.as_bytes()));
        conversation.close().await;
        Ok(())
    }

    /// Any other service: what it says first, if anything, within a short wait.
    async fn plain(&self, addr: SocketAddr, result: &mut ServiceResult) -> Result<(), ConnError> {
        let limits = Limits { read: Duration::from_secs(2).min(self.config.limits.read), ..self.config.limits };
        let mut conversation = Conversation::new(self.connect(addr).await?, limits);
        let mut first = Vec::new();
        let _ = conversation.read_some(&mut first).await;
        if !first.is_empty() {
            result.banner = Some(banner_text(&first));
        }
        result.management_confirmed = result.entry.management;
        conversation.close().await;
        Ok(())
    }

    fn records_for_host(&self, ip: Ipv4Addr, results: Vec<ServiceResult>) -> Vec<Record> {
        let now = chrono::Utc::now();
        let identities: Vec<Identity> = results.iter().flat_map(|r| r.identities.iter().cloned()).collect();
        let described = self.config.fingerprints.describe(&identities);
        let device: Option<Device> = described.as_ref().map(|(device, _)| device.clone());
        let model = described.as_ref().and_then(|(_, model)| *model);
        let mut records = Vec::new();
        let finding = |port: u16, protocol: Service, issue: FindingIssue, credential_id: Option<u32>| {
            Record::Finding(Finding {
                id: None,
                observed_at: now,
                ip: IpAddr::V4(ip),
                port,
                service: protocol,
                issue,
                credential_id,
                device: device.clone(),
                round: self.config.round.clone(),
                sensor: self.config.sensor.clone(),
                isp: None,
            })
        };
        let mut findings = Vec::new();
        for result in &results {
            let protocol = result.entry.protocol;
            records.push(Record::Service(ServiceObservation {
                id: None,
                observed_at: now,
                ip: IpAddr::V4(ip),
                port: result.entry.port,
                protocol,
                status: result.status,
                banner: result.banner.clone(),
                auth: result.auth,
                device: self.config.fingerprints.describe(&result.identities).map(|(device, _)| device),
                round: self.config.round.clone(),
                sensor: self.config.sensor.clone(),
            }));
            match &result.login {
                Some(LoginOutcome::Found { credential_id, .. }) => findings.push(finding(
                    result.entry.port,
                    protocol,
                    FindingIssue::DefaultCredential,
                    Some(*credential_id),
                )),
                Some(LoginOutcome::NoAuthentication) => {
                    findings.push(finding(result.entry.port, protocol, FindingIssue::NoAuthentication, None))
                }
                _ => {}
            }
            // An open page counts only on a recognised device: a web server's public page is not an
            // unprotected admin interface.
            if result.open_page && result.identities.iter().any(|i| i.catalog_id.is_some()) {
                findings.push(finding(result.entry.port, protocol, FindingIssue::NoAuthentication, None));
            }
            if result.entry.management && result.management_confirmed && result.status == GrabStatus::Success {
                findings.push(finding(result.entry.port, protocol, FindingIssue::ExposedManagement, None));
            }
        }
        if let (Some(model), Some(device)) = (model, &device) {
            // The service whose rule named the model, else (matched by vendor and model name)
            // the first service that identified anything.
            let anchor = results
                .iter()
                .find(|r| r.identities.iter().any(|i| i.catalog_id.as_deref() == Some(model.id.as_str())))
                .or_else(|| results.iter().find(|r| !r.identities.is_empty()))
                .map(|r| (r.entry.port, r.entry.protocol));
            if let Some((port, protocol)) = anchor {
                if model.eol {
                    findings.push(finding(port, protocol, FindingIssue::EolDevice, None));
                }
                let outdated = device
                    .firmware
                    .as_deref()
                    .and_then(parse_version)
                    .zip(parse_version(&model.latest_firmware))
                    .is_some_and(|(have, latest)| have < latest);
                if outdated {
                    let firmware_port = results
                        .iter()
                        .find(|r| r.identities.iter().any(|i| i.firmware.is_some()))
                        .map_or((port, protocol), |r| (r.entry.port, r.entry.protocol));
                    findings.push(finding(firmware_port.0, firmware_port.1, FindingIssue::OutdatedFirmware, None));
                }
            }
        }
        records.extend(findings);
        for record in &mut records {
            record.ensure_id();
        }
        records
    }
}
