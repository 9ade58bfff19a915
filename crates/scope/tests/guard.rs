//! The guarded connect against real loopback listeners: an address outside the scope is refused
//! before anything is sent (the listener, which would have accepted, sees no connection), an
//! address inside is connected to; and the scope's membership check agrees with a brute-force
//! model of "authorised ranges minus blocklist minus exclusions" for random scopes, IPv4 and IPv6.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use botscope_scope::{ConnectError, IntervalSet, Refusal, Scope, blocklisted_v4, blocklisted_v6, connect};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(2);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Whether `listener` has a connection waiting (the kernel completes a handshake without accept).
async fn was_contacted(listener: &TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(30), listener.accept()).await.is_ok()
}

/// As [`was_contacted`] for many listeners, waiting once.
async fn contacted(listeners: &[TcpListener]) -> Vec<bool> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut out = Vec::with_capacity(listeners.len());
    for listener in listeners {
        out.push(tokio::time::timeout(Duration::from_millis(1), listener.accept()).await.is_ok());
    }
    out
}

/// Listeners on `count` consecutive loopback addresses from `first`, all on one port.
async fn listeners(first: Ipv4Addr, count: u32) -> (Vec<TcpListener>, u16) {
    'port: for _ in 0..50 {
        let lead = TcpListener::bind((first, 0)).await.unwrap();
        let port = lead.local_addr().unwrap().port();
        let mut all = vec![lead];
        for n in 1..count {
            match TcpListener::bind((Ipv4Addr::from(u32::from(first) + n), port)).await {
                Ok(listener) => all.push(listener),
                Err(_) => continue 'port,
            }
        }
        return (all, port);
    }
    panic!("no port free on {count} addresses from {first}");
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn a_reachable_address_outside_the_scope_is_refused_before_any_packet() {
    runtime().block_on(async {
        let (listeners, port) = listeners(Ipv4Addr::new(127, 91, 0, 1), 2).await;
        let [inside, outside] = [&listeners[0], &listeners[1]];
        let target = |host: &str| SocketAddr::new(host.parse().unwrap(), port);
        let lab = Scope::build_any(&nets(&["127.91.0.1/32"]), &[], true).unwrap();

        // Outside a lab scope.
        let refused = connect(&lab, target("127.91.0.2"), WAIT).await.unwrap_err();
        assert!(matches!(&refused, ConnectError::OutOfScope(e) if e.refusal == Refusal::NotAuthorised), "{refused}");
        assert!(refused.to_string().contains("nothing was sent"), "{refused}");
        // The same address written as IPv4-mapped IPv6.
        let mapped = connect(&lab, target("::ffff:127.91.0.2"), WAIT).await.unwrap_err();
        assert!(matches!(mapped, ConnectError::OutOfScope(_)), "{mapped}");
        // Excluded by the operator.
        let excluded = Scope::build_any(
            &nets(&["127.91.0.0/30"]),
            &[("127.91.0.2/32".parse().unwrap(), "optout.txt:1".into())],
            true,
        )
        .unwrap();
        let refused = connect(&excluded, target("127.91.0.2"), WAIT).await.unwrap_err();
        assert!(matches!(&refused, ConnectError::OutOfScope(e) if matches!(e.refusal, Refusal::Excluded { .. })));
        // Loopback asked for outside lab mode: the blocklist wins over the operator's ranges.
        let field = Scope::build_any(&nets(&["127.0.0.0/8", "::/0"]), &[], false).unwrap();
        for host in ["127.91.0.1", "127.91.0.2", "::ffff:127.91.0.1"] {
            let refused = connect(&field, target(host), WAIT).await.unwrap_err();
            assert!(
                matches!(&refused, ConnectError::OutOfScope(e) if matches!(e.refusal, Refusal::Blocklisted { .. })),
                "{host}: {refused}"
            );
        }
        assert!(!was_contacted(outside).await, "a refused connect reached the listener");
        assert!(!was_contacted(inside).await, "a refused connect reached the listener");

        // The control: the same listeners are reachable when the scope allows them.
        connect(&lab, target("127.91.0.1"), WAIT).await.unwrap();
        assert!(was_contacted(inside).await);
        connect(&excluded, target("127.91.0.1"), WAIT).await.unwrap();
        assert!(was_contacted(inside).await);
        assert!(!was_contacted(outside).await);
    });
}

#[test]
fn ipv6_loopback_is_reachable_only_in_a_lab_scope_that_names_it() {
    runtime().block_on(async {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback on this machine: nothing to test");
            return;
        };
        let target = listener.local_addr().unwrap();
        for scope in [
            Scope::public(&[], false),
            Scope::build_any(&nets(&["::/0"]), &[], false).unwrap(),
            Scope::build_any(&nets(&["127.0.0.0/8"]), &[], true).unwrap(),
            Scope::public(&[("::1/128".parse().unwrap(), "no".into())], true),
        ] {
            let refused = connect(&scope, target, WAIT).await.unwrap_err();
            assert!(matches!(refused, ConnectError::OutOfScope(_)), "{refused}");
        }
        assert!(!was_contacted(&listener).await);
        connect(&Scope::public(&[], true), target, WAIT).await.unwrap();
        assert!(was_contacted(&listener).await);
    });
}

/// Ranges as (offset from 127.92.0.0, prefix length).
type Ranges = Vec<(u32, u8)>;

/// A random lab scope over 127.92.0.0/28 (with ranges reaching outside it), random exclusions.
fn arb_lab_scope() -> impl Strategy<Value = (Ranges, Ranges, bool)> {
    let range = (0u32..40, 26u8..=32);
    (proptest::collection::vec(range.clone(), 1..4), proptest::collection::vec(range, 0..3), any::<bool>())
}

fn lab_net(offset: u32, len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 92, 0, 0)) + offset), len).unwrap().trunc()
}

#[test]
fn the_guarded_connect_reaches_exactly_the_scope_for_random_scopes() {
    let runtime = runtime();
    let (listeners, port) = runtime.block_on(listeners(Ipv4Addr::new(127, 92, 0, 0), 16));
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    runner
        .run(&arb_lab_scope(), |(requested, excluded, lab)| {
            let requested: Vec<IpNet> = requested.iter().map(|(o, l)| IpNet::V4(lab_net(*o, *l))).collect();
            let excluded: Vec<(IpNet, String)> =
                excluded.iter().map(|(o, l)| (IpNet::V4(lab_net(*o, *l)), "test".to_string())).collect();
            let scope = Scope::build_any(&requested, &excluded, lab).unwrap();
            runtime.block_on(async {
                let mut expected = Vec::new();
                for n in 0..listeners.len() {
                    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 92, 0, 0)) + n as u32);
                    let allowed = lab
                        && requested.iter().any(|net| net.contains(&IpAddr::V4(ip)))
                        && !excluded.iter().any(|(net, _)| net.contains(&IpAddr::V4(ip)));
                    let result = connect(&scope, SocketAddr::new(IpAddr::V4(ip), port), WAIT).await;
                    prop_assert_eq!(result.is_ok(), allowed, "{}: {:?}", ip, result.err());
                    if !allowed {
                        prop_assert!(matches!(result, Err(ConnectError::OutOfScope(_))));
                    }
                    expected.push(allowed);
                }
                prop_assert_eq!(contacted(&listeners).await, expected, "which listeners saw a connection");
                Ok(())
            })
        })
        .unwrap();
}

/// Range starts near the blocklist's edges and elsewhere, so random ranges straddle them.
fn arb_v4_net() -> impl Strategy<Value = Ipv4Net> {
    let edges: Vec<u32> = botscope_scope::BUILTIN_BLOCKLIST
        .iter()
        .flat_map(|(net, _)| {
            let net: Ipv4Net = net.parse().unwrap();
            [u32::from(net.network()), u32::from(net.broadcast())]
        })
        .collect();
    let base = prop_oneof![
        proptest::sample::select(edges).prop_flat_map(|edge| edge.saturating_sub(512)..=edge.saturating_add(512)),
        any::<u32>(),
    ];
    (base, 20u8..=32).prop_map(|(base, len)| Ipv4Net::new(Ipv4Addr::from(base), len).unwrap().trunc())
}

fn arb_v6_net() -> impl Strategy<Value = Ipv6Net> {
    let edges: Vec<u128> = botscope_scope::BUILTIN_BLOCKLIST_V6
        .iter()
        .map(|(net, _)| u128::from(net.parse::<Ipv6Net>().unwrap().network()))
        .chain([0x2400_cb00u128 << 96, 0x2606_4700u128 << 96, 0xffffu128 << 32])
        .collect();
    let base = prop_oneof![
        proptest::sample::select(edges)
            .prop_flat_map(|edge| edge.saturating_sub(1 << 20)..=edge.saturating_add(1 << 20)),
        any::<u128>(),
    ];
    (base, prop_oneof![0u8..=32, 90u8..=128])
        .prop_map(|(base, len)| Ipv6Net::new(Ipv6Addr::from(base), len).unwrap().trunc())
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![arb_v4_net().prop_map(IpNet::V4), arb_v6_net().prop_map(IpNet::V6)]
}

/// The rule, written independently of the scope's intervals.
fn model(ip: IpAddr, requested: &[IpNet], excluded: &[IpNet], lab: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let special = match ip {
        IpAddr::V4(v4) if lab => !v4.is_loopback(),
        IpAddr::V6(v6) if lab => !v6.is_loopback(),
        IpAddr::V4(v4) => blocklisted_v4(v4).is_some(),
        IpAddr::V6(v6) => blocklisted_v6(v6).is_some(),
    };
    !special && requested.iter().any(|net| net.contains(&ip)) && !excluded.iter().any(|net| net.contains(&ip))
}

/// Addresses in and around `nets`: their ends, their neighbours, and a few inside.
fn probes(nets: &[IpNet], salt: u64) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for net in nets {
        match net {
            IpNet::V4(net) => {
                let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
                for value in [
                    first.wrapping_sub(1),
                    first,
                    last,
                    last.wrapping_add(1),
                    first + (salt as u32 % (last - first + 1)),
                ] {
                    out.push(IpAddr::V4(Ipv4Addr::from(value)));
                    out.push(IpAddr::V6(Ipv4Addr::from(value).to_ipv6_mapped()));
                }
            }
            IpNet::V6(net) => {
                let (first, last) = (u128::from(net.network()), u128::from(net.broadcast()));
                let inside = first + (u128::from(salt) % (last - first).saturating_add(1).max(1));
                for value in [first.wrapping_sub(1), first, last, last.wrapping_add(1), inside] {
                    out.push(IpAddr::V6(Ipv6Addr::from(value)));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn membership_is_authorised_minus_blocklist_minus_exclusions(
        requested in proptest::collection::vec(arb_net(), 1..5),
        excluded in proptest::collection::vec(arb_net(), 0..4),
        extra in proptest::collection::vec(any::<u32>(), 0..8),
        salt in any::<u64>(),
    ) {
        let named: Vec<(IpNet, String)> = excluded.iter().map(|n| (*n, "x".to_string())).collect();
        let scope = Scope::build_any(&requested, &named, false).unwrap();
        let mut addresses = probes(&requested, salt);
        addresses.extend(probes(&excluded, salt));
        addresses.extend(extra.iter().map(|v| IpAddr::V4(Ipv4Addr::from(*v))));
        for ip in addresses {
            prop_assert_eq!(scope.contains(ip), model(ip, &requested, &excluded, false), "{}", ip);
        }
        // Every IPv4 address the survey would enumerate is allowed.
        let targets: &IntervalSet = scope.targets();
        for interval in targets.intervals().iter().take(64) {
            for value in [interval.first, interval.last] {
                let ip = IpAddr::V4(Ipv4Addr::from(value));
                prop_assert!(model(ip, &requested, &excluded, false), "{} enumerated", ip);
            }
        }
    }
}
