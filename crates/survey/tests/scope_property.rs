//! The survey never leaves its scope: for random scopes, exclusions, re-survey cases and
//! checkpoints, every pair the planner yields lies inside authorised ranges minus the built-in
//! blocklist minus the exclusions (and the re-survey's cases), and a whole run against real
//! loopback listeners connects to no address outside it.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use botscope_survey::SurveyError;
use botscope_survey::catalog::{Dictionary, PortCatalog};
use botscope_survey::conn::Limits;
use botscope_survey::engine::{self, Config, Plan, Progress, Recheck, Resume};
use botscope_survey::fingerprint::Fingerprints;
use botscope_survey::scope::{BUILTIN_BLOCKLIST, Scope, blocklisted_v4};
use botscope_survey::targets::Target;
use ipnet::Ipv4Net;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

fn config(ports: &[u16], fingerprints: &Fingerprints) -> Config {
    let list: Vec<String> = ports.iter().map(|p| format!("{p}/telnet")).collect();
    Config {
        ports: PortCatalog::shipped().parse_list(&list.join(",")).unwrap(),
        dictionary: Dictionary::shipped(),
        fingerprints: fingerprints.clone(),
        rate: 100_000,
        concurrency: 64,
        per_subnet_concurrency: 64,
        max_attempts_per_host: 0,
        shard: (0, 1),
        seed: 1,
        limits: Limits {
            connect: std::time::Duration::from_secs(2),
            read: std::time::Duration::from_millis(300),
            conversation: std::time::Duration::from_secs(2),
            max_bytes: 4096,
        },
        lab: false,
        round: None,
        sensor: None,
        only: None,
    }
}

/// The rule, written independently of the scope's intervals.
fn allowed(ip: Ipv4Addr, requested: &[Ipv4Net], excluded: &[Ipv4Net], lab: bool) -> bool {
    let special = if lab { !ip.is_loopback() } else { blocklisted_v4(ip).is_some() };
    !special && requested.iter().any(|n| n.contains(&ip)) && !excluded.iter().any(|n| n.contains(&ip))
}

/// Ranges of /22 to /32 starting near the blocklist's edges (or anywhere), so they straddle them.
fn arb_net() -> impl Strategy<Value = Ipv4Net> + Clone {
    let edges: Vec<u32> = BUILTIN_BLOCKLIST
        .iter()
        .flat_map(|(net, _)| {
            let net: Ipv4Net = net.parse().unwrap();
            [u32::from(net.network()), u32::from(net.broadcast()).wrapping_add(1)]
        })
        .collect();
    let base = prop_oneof![
        proptest::sample::select(edges).prop_flat_map(|edge| edge.saturating_sub(2048)..=edge.saturating_add(2048)),
        any::<u32>(),
    ];
    (base, 22u8..=32).prop_map(|(base, len)| Ipv4Net::new(Ipv4Addr::from(base), len).unwrap().trunc())
}

/// Addresses in and around `nets`.
fn near(nets: &[Ipv4Net]) -> impl Strategy<Value = Ipv4Addr> + Clone + use<> {
    let spans: Vec<(u32, u32)> = nets.iter().map(|n| (u32::from(n.network()), u32::from(n.broadcast()))).collect();
    (proptest::sample::select(spans), any::<u32>(), 0u32..8).prop_map(|((first, last), pick, way)| {
        Ipv4Addr::from(match way {
            0 => first.wrapping_sub(1),
            1 => last.wrapping_add(1),
            2 => pick,
            _ => first + pick % (last - first + 1),
        })
    })
}

#[derive(Debug, Clone)]
struct Case {
    lab: bool,
    requested: Vec<Ipv4Net>,
    excluded: Vec<Ipv4Net>,
    ports: Vec<u16>,
    cases: Option<Vec<(Ipv4Addr, u16)>>,
    open: Option<Vec<(Ipv4Addr, u16)>>,
    done: Vec<Ipv4Addr>,
    shards: u64,
}

fn arb_case(
    nets: impl Strategy<Value = Ipv4Net> + Clone,
    lab: impl Strategy<Value = bool>,
) -> impl Strategy<Value = Case> {
    (
        lab,
        proptest::collection::vec(nets.clone(), 1..4),
        proptest::collection::vec(nets, 0..3),
        proptest::collection::btree_set(prop_oneof![Just(23u16), Just(2323), Just(80)], 1..3),
        1u64..4,
    )
        .prop_flat_map(|(lab, requested, excluded, ports, shards)| {
            let ports: Vec<u16> = ports.into_iter().collect();
            let mut around = requested.clone();
            around.extend(excluded.iter().copied());
            let pair = (near(&around), proptest::sample::select(vec![23u16, 2323, 80, 8080]));
            (
                Just((lab, requested, excluded, ports, shards)),
                proptest::option::of(proptest::collection::vec(pair.clone(), 0..12)),
                proptest::option::of(proptest::collection::vec(pair, 0..12)),
                proptest::collection::vec(near(&around), 0..6),
            )
        })
        .prop_map(|((lab, requested, excluded, ports, shards), cases, open, done)| Case {
            lab,
            requested,
            excluded,
            ports,
            cases,
            open,
            done,
            shards,
        })
}

fn build(case: &Case) -> Scope {
    let excluded: Vec<(Ipv4Net, String)> = case.excluded.iter().map(|n| (*n, "test exclusion".to_string())).collect();
    Scope::build(&case.requested, &excluded, case.lab).unwrap()
}

fn resume(case: &Case) -> Resume {
    Resume {
        open: case.open.as_ref().map(|pairs| pairs.iter().map(|(ip, port)| Target { ip: *ip, port: *port }).collect()),
        done: case.done.iter().copied().collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_planned_pair_lies_inside_scope_minus_blocklist_minus_exclusions(
        case in arb_case(arb_net(), Just(false))
    ) {
        let fingerprints = Fingerprints::shipped();
        let scope = build(&case);
        let mut config = config(&case.ports, &fingerprints);
        let mut scope_used = scope.clone();
        if let Some(cases) = &case.cases {
            let recheck = Recheck::new(&scope, cases.iter().copied());
            for (ip, _) in &recheck.outside {
                prop_assert!(!allowed(*ip, &case.requested, &case.excluded, false), "{} was skipped", ip);
            }
            config.only = Some(recheck.only.clone());
            scope_used = recheck.scope;
        }
        // A re-survey's scope is the operator's, narrowed to the cases' addresses.
        let in_scope = |ip: Ipv4Addr| {
            allowed(ip, &case.requested, &case.excluded, false)
                && case.cases.as_ref().is_none_or(|cases| cases.iter().any(|(case, _)| *case == ip))
        };
        let fits = |ip: Ipv4Addr, port: u16| {
            in_scope(ip)
                && case.ports.contains(&port)
                && case.cases.as_ref().is_none_or(|cases| cases.contains(&(ip, port)))
        };
        let mut planned = BTreeSet::new();
        let mut dropped = None;
        for shard in 0..case.shards {
            config.shard = (shard, case.shards);
            let plan = match Plan::new(&scope_used, &config, resume(&case)) {
                Ok(plan) => plan,
                Err(SurveyError::NothingToSurvey) => {
                    prop_assert!(scope_used.targets().is_empty());
                    return Ok(());
                }
                Err(error) => return Err(TestCaseError::fail(error.to_string())),
            };
            for target in plan.probes().chain(plan.resumed_open().unwrap_or_default().iter().copied()) {
                prop_assert!(fits(target.ip, target.port), "{}:{} planned", target.ip, target.port);
                planned.insert((target.ip, target.port));
            }
            for ip in plan.done() {
                prop_assert!(in_scope(*ip), "{} kept as done", ip);
            }
            dropped = Some(plan.checkpoint_outside_scope());
        }
        // Nothing inside was left out either: the plan is exactly the allowed pairs.
        match &case.open {
            Some(open) => {
                let expected: BTreeSet<(Ipv4Addr, u16)> = open.iter().copied().filter(|(ip, port)| fits(*ip, *port)).collect();
                prop_assert_eq!(&planned, &expected);
                let done: BTreeSet<&Ipv4Addr> = case.done.iter().collect();
                let outside_done = done.iter().filter(|ip| !in_scope(***ip)).count();
                let outside_open = open.iter().filter(|(ip, port)| !fits(*ip, *port)).count();
                prop_assert_eq!(dropped, Some((outside_done + outside_open) as u64));
            }
            None => {
                let mut expected = BTreeSet::new();
                for interval in scope_used.targets().intervals() {
                    for value in interval.first..=interval.last {
                        for port in &case.ports {
                            let ip = Ipv4Addr::from(value);
                            if fits(ip, *port) {
                                expected.insert((ip, *port));
                            }
                        }
                    }
                }
                prop_assert_eq!(&planned, &expected);
            }
        }
    }
}

/// Listeners on every address of 127.94.0.0/27 on one port, recording the addresses connected to.
struct Universe {
    port: u16,
    contacted: Arc<Mutex<Vec<Ipv4Addr>>>,
}

const UNIVERSE: u32 = 32;

fn universe_base() -> u32 {
    u32::from(Ipv4Addr::new(127, 94, 0, 0))
}

async fn universe() -> Universe {
    let contacted: Arc<Mutex<Vec<Ipv4Addr>>> = Arc::default();
    'port: for _ in 0..50 {
        let lead = std::net::TcpListener::bind((Ipv4Addr::from(universe_base()), 0)).unwrap();
        let port = lead.local_addr().unwrap().port();
        let mut all = vec![lead];
        for n in 1..UNIVERSE {
            match std::net::TcpListener::bind((Ipv4Addr::from(universe_base() + n), port)) {
                Ok(listener) => all.push(listener),
                Err(_) => continue 'port,
            }
        }
        for listener in all {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let contacted = contacted.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    if let IpAddr::V4(ip) = stream.local_addr().unwrap().ip() {
                        contacted.lock().unwrap().push(ip);
                    }
                }
            });
        }
        return Universe { port, contacted };
    }
    panic!("no port free on every address of 127.94.0.0/27");
}

/// Lab ranges starting inside 127.94.0.0/27 or just past it.
fn arb_lab_net() -> impl Strategy<Value = Ipv4Net> + Clone {
    (0u32..48, 27u8..=32)
        .prop_map(|(offset, len)| Ipv4Net::new(Ipv4Addr::from(universe_base() + offset), len).unwrap().trunc())
}

#[test]
fn a_lab_run_connects_to_no_address_outside_its_scope() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let universe = runtime.block_on(universe());
    let fingerprints = Fingerprints::shipped();
    let mut runner = TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
    runner
        .run(&arb_case(arb_lab_net(), Just(true)), |mut case| {
            case.ports = vec![universe.port];
            if let Some(cases) = case.cases.as_mut() {
                cases.iter_mut().for_each(|pair| pair.1 = universe.port);
            }
            if let Some(open) = case.open.as_mut() {
                open.iter_mut().for_each(|pair| pair.1 = universe.port);
            }
            let scope = build(&case);
            let mut config = config(&case.ports, &fingerprints);
            config.lab = true;
            let mut run_scope = scope.clone();
            if let Some(cases) = &case.cases {
                let recheck = Recheck::new(&scope, cases.iter().copied());
                config.only = Some(recheck.only.clone());
                run_scope = recheck.scope;
            }
            let listening = |ip: Ipv4Addr| (universe_base()..universe_base() + UNIVERSE).contains(&u32::from(ip));
            let permitted = |ip: Ipv4Addr| {
                allowed(ip, &case.requested, &case.excluded, true)
                    && case.cases.as_ref().is_none_or(|cases| cases.iter().any(|(c, _)| *c == ip))
            };
            universe.contacted.lock().unwrap().clear();
            let summary = runtime.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
                let result = engine::run(
                    &run_scope,
                    config,
                    tx,
                    Arc::new(Progress::default()),
                    Arc::new(AtomicBool::new(false)),
                    resume(&case),
                )
                .await;
                drain.await.unwrap();
                // The listeners record a connection as soon as it is accepted; give them a moment.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                result
            });
            let summary = match summary {
                Ok(summary) => summary,
                Err(SurveyError::NothingToSurvey) => return Ok(()),
                Err(error) => return Err(TestCaseError::fail(error.to_string())),
            };
            let contacted: HashSet<Ipv4Addr> = universe.contacted.lock().unwrap().iter().copied().collect();
            for ip in &contacted {
                prop_assert!(permitted(*ip), "{} was connected to, outside the scope ({:?})", ip, case);
            }
            prop_assert_eq!(summary.connects_refused, 0);
            // And the run did its work: every permitted listener that was to be probed was reached.
            let expected: HashSet<Ipv4Addr> = match &case.open {
                // The service stage skips the hosts the checkpoint says are finished.
                Some(open) => open
                    .iter()
                    .map(|(ip, _)| *ip)
                    .filter(|ip| listening(*ip) && permitted(*ip) && !case.done.contains(ip))
                    .collect(),
                None => {
                    (0..UNIVERSE).map(|n| Ipv4Addr::from(universe_base() + n)).filter(|ip| permitted(*ip)).collect()
                }
            };
            prop_assert_eq!(contacted, expected);
            Ok(())
        })
        .unwrap();
}
