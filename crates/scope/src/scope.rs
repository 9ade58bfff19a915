//! The scope: the operator's authorised ranges, minus the built-in blocklist, minus the operator's
//! exclusions and opt-outs. In lab mode the blocklist is replaced by "loopback only".
//!
//! The IPv4 part is a set of intervals the survey enumerates. The IPv6 part is checked address by
//! address (liveness probes IPv6 servers; the survey enumerates IPv4 only, as ZMap does).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::blocklist::{self, LAB_RANGE, LAB_RANGE_V6};
use crate::set::{Interval, IntervalSet};
use crate::{RangeError, ScopeError};

/// One range taken out of the operator's IPv4 scope, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The addresses removed (only those that were in scope).
    pub removed: IntervalSet,
    /// Why: a blocklist entry's reason, or the exclusion file and line.
    pub reason: String,
}

/// Sorted, merged, disjoint closed intervals of IPv6 addresses as integers.
#[derive(Debug, Clone, Default)]
struct Set6(Vec<(u128, u128)>);

impl Set6 {
    fn of(nets: impl Iterator<Item = Ipv6Net>) -> Set6 {
        let mut spans: Vec<(u128, u128)> =
            nets.map(|net| (u128::from(net.network()), u128::from(net.broadcast()))).collect();
        spans.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(spans.len());
        for (first, last) in spans {
            match merged.last_mut() {
                Some(previous) if first <= previous.1.saturating_add(1) => previous.1 = previous.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        Set6(merged)
    }

    fn contains(&self, ip: Ipv6Addr) -> bool {
        let value = u128::from(ip);
        let index = self.0.partition_point(|span| span.1 < value);
        self.0.get(index).is_some_and(|span| span.0 <= value)
    }
}

/// What may be connected to, and what was taken out. Built only by [`Scope::build`],
/// [`Scope::build_any`] and [`Scope::public`], which always subtract the built-in blocklist
/// (outside lab mode) and the exclusions, so a `Scope` value never holds a blocklisted address.
#[derive(Debug, Clone)]
pub struct Scope {
    targets: IntervalSet,
    requested: u64,
    exclusions: Vec<Exclusion>,
    v6_requested: Set6,
    v6_excluded: Set6,
    v6_exclusions: Vec<(Ipv6Net, String)>,
    lab: bool,
}

/// Why an address is outside a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Lab mode, and the address is not loopback.
    LabLoopbackOnly,
    /// The address is in the built-in blocklist.
    Blocklisted {
        /// The blocklist entry.
        range: &'static str,
        /// Why the entry is there.
        reason: &'static str,
    },
    /// The operator excluded it (an exclusion or opt-out file).
    Excluded {
        /// The exclusion's reason (file, line and comment).
        reason: String,
    },
    /// It is in no range the operator is authorised for.
    NotAuthorised,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LabLoopbackOnly => write!(f, "lab mode allows loopback ({LAB_RANGE}, {LAB_RANGE_V6}) only"),
            Refusal::Blocklisted { range, reason } => write!(f, "built-in blocklist {range}: {reason}"),
            Refusal::Excluded { reason } => write!(f, "excluded: {reason}"),
            Refusal::NotAuthorised => write!(f, "not in any authorised range"),
        }
    }
}

/// An address the scope does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is outside the scope ({refusal}); nothing was sent to it")]
pub struct OutOfScope {
    /// The address refused.
    pub addr: IpAddr,
    /// Why.
    pub refusal: Refusal,
}

impl Scope {
    /// Builds an IPv4 scope from the operator's ranges and exclusions (what the survey enumerates).
    ///
    /// Outside lab mode the built-in blocklist is always subtracted. In lab mode every requested
    /// range must lie inside loopback (127.0.0.0/8): anything else is an error, so a typo cannot
    /// turn a lab run into a real scan.
    pub fn build(requested: &[Ipv4Net], excluded: &[(Ipv4Net, String)], lab: bool) -> Result<Scope, ScopeError> {
        let requested: Vec<IpNet> = requested.iter().map(|net| IpNet::V4(*net)).collect();
        let excluded: Vec<(IpNet, String)> = excluded.iter().map(|(net, why)| (IpNet::V4(*net), why.clone())).collect();
        Scope::build_any(&requested, &excluded, lab)
    }

    /// As [`Scope::build`], with IPv6 ranges too. In lab mode IPv6 ranges must lie inside ::1/128.
    pub fn build_any(requested: &[IpNet], excluded: &[(IpNet, String)], lab: bool) -> Result<Scope, ScopeError> {
        if requested.is_empty() {
            return Err(ScopeError::NoScope);
        }
        if lab {
            let loopback: Ipv4Net = LAB_RANGE.parse().expect("constant parses");
            let loopback_v6: Ipv6Net = LAB_RANGE_V6.parse().expect("constant parses");
            let outside = requested.iter().find(|net| match net {
                IpNet::V4(net) => !loopback.contains(net),
                IpNet::V6(net) => !loopback_v6.contains(net),
            });
            if let Some(outside) = outside {
                return Err(ScopeError::LabOutsideLoopback(outside.to_string()));
            }
        }
        Ok(Scope::assemble(requested, excluded, lab))
    }

    /// Every address outside the blocklist (0.0.0.0/0 and ::/0), minus `excluded`; in lab mode
    /// every loopback address. Liveness uses it when no `--scope` is given.
    pub fn public(excluded: &[(IpNet, String)], lab: bool) -> Scope {
        let everything: Vec<IpNet> = if lab {
            vec![LAB_RANGE.parse().expect("constant parses"), LAB_RANGE_V6.parse().expect("constant parses")]
        } else {
            vec!["0.0.0.0/0".parse().expect("constant parses"), "::/0".parse().expect("constant parses")]
        };
        Scope::assemble(&everything, excluded, lab)
    }

    fn assemble(requested: &[IpNet], excluded: &[(IpNet, String)], lab: bool) -> Scope {
        let v4: Vec<Ipv4Net> =
            requested.iter().filter_map(|net| if let IpNet::V4(n) = net { Some(*n) } else { None }).collect();
        let asked = IntervalSet::from_nets(&v4);
        let mut exclusions = Vec::new();
        let mut remaining = asked.clone();
        if !lab {
            for (net, range, reason) in blocklist::V4.iter() {
                subtract(&mut remaining, &mut exclusions, *net, format!("built-in blocklist {range}: {reason}"));
            }
        }
        let mut v6_exclusions = Vec::new();
        for (net, reason) in excluded {
            match net {
                IpNet::V4(net) => subtract(&mut remaining, &mut exclusions, *net, reason.clone()),
                IpNet::V6(net) => v6_exclusions.push((*net, reason.clone())),
            }
        }
        let v6_requested =
            Set6::of(requested.iter().filter_map(|net| if let IpNet::V6(n) = net { Some(*n) } else { None }));
        let v6_excluded = Set6::of(v6_exclusions.iter().map(|(net, _)| *net));
        Scope { targets: remaining, requested: asked.len(), exclusions, v6_requested, v6_excluded, v6_exclusions, lab }
    }

    /// The IPv4 addresses in scope (what the survey enumerates).
    pub fn targets(&self) -> &IntervalSet {
        &self.targets
    }

    /// IPv4 addresses the operator asked for before anything was subtracted.
    pub fn requested(&self) -> u64 {
        self.requested
    }

    /// What was subtracted from the IPv4 ranges, with reasons (only what removed something).
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.exclusions
    }

    /// Whether this is a lab scope (loopback only, no blocklist).
    pub fn is_lab(&self) -> bool {
        self.lab
    }

    /// The part of this scope inside `addresses` (IPv4 only): a re-survey narrows the operator's
    /// scope to its cases. The result never holds an address this scope does not.
    pub fn restrict(&self, addresses: &IntervalSet) -> Scope {
        Scope {
            targets: self.targets.intersection(addresses),
            requested: self.requested,
            exclusions: self.exclusions.clone(),
            v6_requested: Set6::default(),
            v6_excluded: Set6::default(),
            v6_exclusions: Vec::new(),
            lab: self.lab,
        }
    }

    /// Whether `ip` may be connected to.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }

    /// Whether `ip` may be connected to, and if not, why. An IPv4-mapped IPv6 address
    /// (::ffff:a.b.c.d) is judged as the IPv4 address it names.
    pub fn check(&self, ip: IpAddr) -> Result<(), OutOfScope> {
        let verdict = match ip {
            IpAddr::V4(v4) => self.check_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.check_v4(v4),
                None => self.check_v6(v6),
            },
        };
        verdict.map_err(|refusal| OutOfScope { addr: ip, refusal })
    }

    fn check_v4(&self, ip: Ipv4Addr) -> Result<(), Refusal> {
        // The blocklist and the lab rule are checked again here although `targets` was built
        // without them: the check must not depend on how the intervals were computed.
        if self.lab {
            if !ip.is_loopback() {
                return Err(Refusal::LabLoopbackOnly);
            }
        } else if let Some((range, reason)) = blocklist::blocklisted_v4(ip) {
            return Err(Refusal::Blocklisted { range, reason });
        }
        if self.targets.contains(ip) {
            return Ok(());
        }
        match self.exclusions.iter().find(|exclusion| exclusion.removed.contains(ip)) {
            Some(exclusion) => Err(Refusal::Excluded { reason: exclusion.reason.clone() }),
            None => Err(Refusal::NotAuthorised),
        }
    }

    fn check_v6(&self, ip: Ipv6Addr) -> Result<(), Refusal> {
        if self.lab {
            if !ip.is_loopback() {
                return Err(Refusal::LabLoopbackOnly);
            }
        } else if let Some((range, reason)) = blocklist::blocklisted_v6(ip) {
            return Err(Refusal::Blocklisted { range, reason });
        }
        if !self.v6_requested.contains(ip) {
            return Err(Refusal::NotAuthorised);
        }
        if self.v6_excluded.contains(ip) {
            let reason = self.v6_exclusions.iter().find(|(net, _)| net.contains(&ip)).map(|(_, why)| why.clone());
            return Err(Refusal::Excluded { reason: reason.unwrap_or_default() });
        }
        Ok(())
    }
}

fn subtract(remaining: &mut IntervalSet, exclusions: &mut Vec<Exclusion>, net: Ipv4Net, reason: String) {
    let cut = IntervalSet::from_intervals(vec![Interval::of(net)]);
    let removed = remaining.intersection(&cut);
    if !removed.is_empty() {
        *remaining = remaining.difference(&cut);
        exclusions.push(Exclusion { removed, reason });
    }
}

/// Parses one IPv4 range as the command line and scope files write it: `CIDR` or a bare address.
/// `FIRST-LAST` is not accepted (ranges that are not prefixes are rare in allocations and a
/// frequent source of off-by-one scope errors).
pub fn parse_range(text: &str) -> Result<Ipv4Net, RangeError> {
    let text = text.trim();
    if text.contains(':') {
        return Err(RangeError::Ipv6NotEnumerable(text.to_string()));
    }
    let net = if text.contains('/') {
        text.parse::<Ipv4Net>().map_err(|e| RangeError::Malformed {
            text: text.to_string(),
            why: e.to_string(),
            example: "an IPv4 CIDR such as 198.51.100.0/24",
        })?
    } else {
        let addr: Ipv4Addr = text.parse().map_err(|_| RangeError::Malformed {
            text: text.to_string(),
            why: "not an IPv4 address or CIDR".into(),
            example: "e.g. 198.51.100.0/24",
        })?;
        Ipv4Net::from(addr)
    };
    if net.network() != net.addr() {
        return Err(RangeError::HostBits { text: text.to_string(), network: net.trunc().to_string() });
    }
    Ok(net)
}

/// Parses an IPv4 or IPv6 range: `CIDR` or a bare address.
pub fn parse_net(text: &str) -> Result<IpNet, RangeError> {
    let text = text.trim();
    if !text.contains(':') {
        return parse_range(text).map(IpNet::V4);
    }
    let net = if text.contains('/') {
        text.parse::<Ipv6Net>().map_err(|e| RangeError::Malformed {
            text: text.to_string(),
            why: e.to_string(),
            example: "a CIDR such as 2001:db8::/32",
        })?
    } else {
        let addr: Ipv6Addr = text.parse().map_err(|_| RangeError::Malformed {
            text: text.to_string(),
            why: "not an address or CIDR".into(),
            example: "e.g. 2001:db8::/32",
        })?;
        Ipv6Net::from(addr)
    };
    if net.network() != net.addr() {
        return Err(RangeError::HostBits { text: text.to_string(), network: net.trunc().to_string() });
    }
    Ok(IpNet::V6(net))
}

/// Reads a scope or exclusion file of IPv4 ranges: one range per line, `#` starts a comment (the
/// rest of the line is kept as the reason for exclusions), blank lines ignored. Errors name the
/// file and line.
pub fn read_range_file(path: &Path) -> Result<Vec<(Ipv4Net, String)>, ScopeError> {
    read_lines(path, parse_range)
}

/// As [`read_range_file`], with IPv6 ranges too.
pub fn read_net_file(path: &Path) -> Result<Vec<(IpNet, String)>, ScopeError> {
    read_lines(path, parse_net)
}

fn read_lines<T>(path: &Path, parse: fn(&str) -> Result<T, RangeError>) -> Result<Vec<(T, String)>, ScopeError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScopeError::Read { name: name.clone(), source })?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let (range, comment) = match line.split_once('#') {
            Some((range, comment)) => (range.trim(), comment.trim()),
            None => (line.trim(), ""),
        };
        if range.is_empty() {
            continue;
        }
        let net = parse(range)
            .map_err(|e| ScopeError::Invalid { name: format!("{name}:{}", number + 1), reason: e.to_string() })?;
        let reason = if comment.is_empty() {
            format!("{name}:{}", number + 1)
        } else {
            format!("{name}:{}: {comment}", number + 1)
        };
        out.push((net, reason));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn any(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocklist_is_always_subtracted_outside_lab_mode() {
        let scope = Scope::build(&nets(&["192.168.0.0/15"]), &[], false).unwrap();
        // 192.168.0.0/15 = 192.168.0.0-192.169.255.255; 192.168/16 is private.
        assert_eq!(scope.targets().len(), 65536);
        assert_eq!(scope.targets().intervals()[0].first, u32::from(Ipv4Addr::new(192, 169, 0, 0)));
        assert!(scope.exclusions()[0].reason.contains("RFC 1918"));
        assert!(scope.contains(ip("192.169.3.4")));
        assert_eq!(
            scope.check(ip("192.168.1.1")).unwrap_err().refusal,
            Refusal::Blocklisted { range: "192.168.0.0/16", reason: "private use (RFC 1918)" }
        );
    }

    #[test]
    fn lab_mode_refuses_anything_outside_loopback() {
        let error = Scope::build(&nets(&["127.16.0.0/12", "198.51.100.0/24"]), &[], true).unwrap_err();
        assert!(matches!(error, ScopeError::LabOutsideLoopback(ref net) if net == "198.51.100.0/24"));
        let error = Scope::build_any(&any(&["127.0.0.0/8", "::/127"]), &[], true).unwrap_err();
        assert!(matches!(error, ScopeError::LabOutsideLoopback(ref net) if net == "::/127"));
        // and loopback outside lab mode is blocklisted to nothing
        let scope = Scope::build(&nets(&["127.16.0.0/12"]), &[], false).unwrap();
        assert!(scope.targets().is_empty());
        assert!(!scope.contains(ip("127.16.0.1")));
    }

    #[test]
    fn exclusions_are_subtracted_and_reported_with_their_reason() {
        let excluded = vec![("127.16.0.128/25".parse().unwrap(), "optout.txt:3: customer asked".to_string())];
        let scope = Scope::build(&nets(&["127.16.0.0/24"]), &excluded, true).unwrap();
        assert_eq!(scope.targets().len(), 128);
        assert_eq!(scope.exclusions().len(), 1);
        assert_eq!(scope.exclusions()[0].removed.len(), 128);
        assert_eq!(
            scope.check(ip("127.16.0.200")).unwrap_err().refusal,
            Refusal::Excluded { reason: "optout.txt:3: customer asked".into() }
        );
        assert_eq!(scope.check(ip("127.17.0.1")).unwrap_err().refusal, Refusal::NotAuthorised);
        assert_eq!(scope.check(ip("8.8.8.8")).unwrap_err().refusal, Refusal::LabLoopbackOnly);
    }

    #[test]
    fn no_scope_is_an_error() {
        assert!(matches!(Scope::build(&[], &[], false), Err(ScopeError::NoScope)));
        assert!(matches!(Scope::build_any(&[], &[], true), Err(ScopeError::NoScope)));
    }

    #[test]
    fn parse_range_explains_mistakes() {
        assert!(parse_range("10.0.0.1/8").unwrap_err().to_string().contains("did you mean 10.0.0.0/8"));
        assert!(matches!(parse_range("2001:db8::/32"), Err(RangeError::Ipv6NotEnumerable(_))));
        assert_eq!(parse_range(" 127.0.0.1 ").unwrap(), "127.0.0.1/32".parse::<Ipv4Net>().unwrap());
        assert_eq!(parse_net("2001:db8::1").unwrap(), "2001:db8::1/128".parse::<IpNet>().unwrap());
        assert!(parse_net("2001:db8::1/32").unwrap_err().to_string().contains("did you mean 2001:db8::/32"));
        assert!(parse_net("2001:zz::/32").is_err());
        assert_eq!(parse_net("198.51.100.0/24").unwrap(), "198.51.100.0/24".parse::<IpNet>().unwrap());
    }

    #[test]
    fn ipv6_membership_applies_the_blocklist_and_exclusions() {
        let excluded = vec![("2400:cb00:1::/48".parse().unwrap(), "optout.txt:1: asked".to_string())];
        let scope = Scope::build_any(&any(&["2400:cb00::/32", "2001:db8::/32"]), &excluded, false).unwrap();
        assert!(scope.contains(ip("2400:cb00::1")));
        assert_eq!(
            scope.check(ip("2400:cb00:1::5")).unwrap_err().refusal,
            Refusal::Excluded { reason: "optout.txt:1: asked".into() }
        );
        assert!(matches!(scope.check(ip("2001:db8::1")).unwrap_err().refusal, Refusal::Blocklisted { .. }));
        assert_eq!(scope.check(ip("2606:4700::1")).unwrap_err().refusal, Refusal::NotAuthorised);
        assert!(scope.targets().is_empty(), "no IPv4 asked");
    }

    #[test]
    fn an_ipv4_mapped_address_is_judged_as_its_ipv4_address() {
        let scope = Scope::public(&[], false);
        assert!(scope.contains(ip("::ffff:8.8.8.8")));
        assert!(matches!(
            scope.check(ip("::ffff:10.0.0.1")).unwrap_err().refusal,
            Refusal::Blocklisted { range: "10.0.0.0/8", .. }
        ));
        assert!(!scope.contains(ip("::ffff:127.0.0.1")));
        // The deprecated IPv4-compatible form is not a way around the blocklist either.
        assert!(!scope.contains(ip("::10.0.0.1")));
        assert!(!scope.contains(ip("64:ff9b::a00:1")), "a translator prefix reaches IPv4");
        let lab = Scope::build(&nets(&["127.5.0.0/16"]), &[], true).unwrap();
        assert!(lab.contains(ip("::ffff:127.5.0.1")));
        assert!(!lab.contains(ip("::ffff:127.6.0.1")));
    }

    #[test]
    fn the_public_scope_is_everything_but_the_blocklist_and_the_lab_one_loopback_only() {
        // What `botscope liveness` probed before the scope existed, kept.
        let field = Scope::public(&[], false);
        let lab = Scope::public(&[], true);
        assert!(lab.contains(ip("127.200.0.10")) && lab.contains(ip("::1")));
        assert!(!lab.contains(ip("192.0.2.1")) && !lab.contains(ip("10.0.0.1")) && !lab.contains(ip("8.8.8.8")));
        assert!(!lab.contains(ip("2606:4700::1")));
        assert!(!field.contains(ip("127.200.0.10")) && !field.contains(ip("10.1.2.3")));
        assert!(!field.contains(ip("192.168.1.1")) && !field.contains(ip("100.64.0.1")));
        assert!(!field.contains(ip("2001:db8::1")) && !field.contains(ip("fe80::1")) && !field.contains(ip("::1")));
        assert!(field.contains(ip("8.8.8.8")) && field.contains(ip("2606:4700::1")));
        assert_eq!(
            field.targets().len(),
            (1u64 << 32) - field.exclusions().iter().map(|e| e.removed.len()).sum::<u64>()
        );
        let excluded =
            vec![("8.8.8.0/24".parse().unwrap(), "no".to_string()), ("2606:4700::/32".parse().unwrap(), "no".into())];
        let narrowed = Scope::public(&excluded, false);
        assert!(!narrowed.contains(ip("8.8.8.8")) && !narrowed.contains(ip("2606:4700::1")));
        assert!(narrowed.contains(ip("8.8.4.4")));
    }

    #[test]
    fn restrict_never_adds_an_address() {
        let scope = Scope::build(&nets(&["127.9.0.0/24"]), &[], true).unwrap();
        let cases = IntervalSet::from_nets(&nets(&["127.9.0.5/32", "127.10.0.5/32"]));
        let narrowed = scope.restrict(&cases);
        assert_eq!(narrowed.targets().len(), 1);
        assert!(narrowed.contains(ip("127.9.0.5")));
        assert!(!narrowed.contains(ip("127.10.0.5")) && !narrowed.contains(ip("127.9.0.6")));
    }

    #[test]
    fn range_files_name_the_line_of_a_mistake() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ranges.txt");
        std::fs::write(&path, "# header\n198.51.100.0/24 # partner\n\n2001:db8::/32\n").unwrap();
        let both = read_net_file(&path).unwrap();
        assert_eq!(both.len(), 2);
        assert!(both[0].1.ends_with(":2: partner"), "{}", both[0].1);
        let error = read_range_file(&path).unwrap_err();
        assert!(matches!(error, ScopeError::Invalid { ref name, .. } if name.ends_with(":4")), "{error}");
        assert!(matches!(read_range_file(&dir.path().join("missing")), Err(ScopeError::Read { .. })));
    }
}
