use std::collections::HashMap;
use std::net::IpAddr;

use botscope_model::{Isp, Origin, RoutedPrefix};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

/// Answers "which prefix, AS and ISP is this address?" by longest-prefix match.
///
/// Built once from the routing table and the registry; lookups take no locks and allocate only
/// the small list of ISP handles they return.
pub struct Attributor {
    v4: PrefixMap<Ipv4Net, u32>,
    v6: PrefixMap<Ipv6Net, u32>,
    origins: Vec<Origin>,
    /// For each entry of `origins`, the registry ISPs (indexes into `handles`) its ASNs map to.
    origin_isps: Vec<Vec<u32>>,
    handles: Vec<String>,
}

/// What attribution knows about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution<'a> {
    /// The address asked about.
    pub ip: IpAddr,
    /// The most specific routed prefix holding it, if any.
    pub prefix: Option<IpNet>,
    /// Who originates that prefix.
    pub origin: Option<&'a Origin>,
    /// Handles of the registry ISPs owning an origin AS, in origin order.
    pub isps: Vec<&'a str>,
}

impl Attributor {
    /// Joins a routing table and the ISP registry. A prefix listed twice keeps its last origin.
    pub fn new(prefixes: impl IntoIterator<Item = RoutedPrefix>, isps: &[Isp]) -> Self {
        let handles: Vec<String> = isps.iter().map(|isp| isp.handle.clone()).collect();
        let mut isps_of_asn: HashMap<u32, Vec<u32>> = HashMap::new();
        for (index, isp) in isps.iter().enumerate() {
            for asn in &isp.asns {
                let owners = isps_of_asn.entry(*asn).or_default();
                if !owners.contains(&(index as u32)) {
                    owners.push(index as u32);
                }
            }
        }
        // Real tables hold few distinct origins (~75k ASes), so origins are interned.
        let mut origin_index: HashMap<Origin, u32> = HashMap::new();
        let mut origins = Vec::new();
        let mut v4 = PrefixMap::new();
        let mut v6 = PrefixMap::new();
        for routed in prefixes {
            let index = *origin_index.entry(routed.origin.clone()).or_insert_with(|| {
                origins.push(routed.origin);
                (origins.len() - 1) as u32
            });
            match routed.prefix {
                IpNet::V4(net) => v4.insert(net, index),
                IpNet::V6(net) => v6.insert(net, index),
            };
        }
        let origin_isps = origins
            .iter()
            .map(|origin: &Origin| {
                let mut owners: Vec<u32> = Vec::new();
                for asn in origin.asns() {
                    for owner in isps_of_asn.get(&asn).into_iter().flatten() {
                        if !owners.contains(owner) {
                            owners.push(*owner);
                        }
                    }
                }
                owners
            })
            .collect();
        Attributor { v4, v6, origins, origin_isps, handles }
    }

    /// The registry ISPs holding `ip`, if any.
    pub fn handles(&self, ip: IpAddr) -> Option<botscope_model::IspHandles> {
        let isps = self.lookup(ip).isps;
        (!isps.is_empty()).then(|| botscope_model::IspHandles::new(isps))
    }

    /// Who holds `ip`: the most specific routed prefix, its origin and the registry's ISPs.
    pub fn lookup(&self, ip: IpAddr) -> Attribution<'_> {
        let found = match ip {
            IpAddr::V4(addr) => self.v4.get_lpm(&Ipv4Net::from(addr)).map(|(net, index)| (IpNet::V4(net), *index)),
            IpAddr::V6(addr) => self.v6.get_lpm(&Ipv6Net::from(addr)).map(|(net, index)| (IpNet::V6(net), *index)),
        };
        match found {
            Some((prefix, index)) => Attribution {
                ip,
                prefix: Some(prefix),
                origin: Some(&self.origins[index as usize]),
                isps: self.origin_isps[index as usize].iter().map(|i| self.handles[*i as usize].as_str()).collect(),
            },
            None => Attribution { ip, prefix: None, origin: None, isps: Vec::new() },
        }
    }

    /// Prefixes held (IPv4, IPv6).
    pub fn len(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Whether the routing table is empty.
    pub fn is_empty(&self) -> bool {
        self.v4.len() == 0 && self.v6.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn routed(prefix: &str, origin: &str) -> RoutedPrefix {
        RoutedPrefix { prefix: prefix.parse().unwrap(), origin: origin.parse().unwrap() }
    }

    fn isp(handle: &str, asns: &[u32]) -> Isp {
        Isp {
            id: None,
            handle: handle.into(),
            name: handle.into(),
            asns: asns.to_vec(),
            contact: "abuse@example.org".into(),
            country: None,
            language: Default::default(),
            notify: Default::default(),
        }
    }

    #[test]
    fn most_specific_prefix_wins_and_maps_to_its_isps() {
        let attributor = Attributor::new(
            [
                routed("127.16.0.0/12", "64500"),
                routed("127.16.4.0/22", "64501_64502"),
                routed("127.16.4.0/24", "64503,64504"),
                routed("2001:db8::/32", "64500"),
                routed("2001:db8:ff00::/40", "64505"),
            ],
            &[isp("alpha", &[64500]), isp("beta", &[64502, 64504]), isp("gamma", &[64501])],
        );
        let look = |ip: &str| attributor.lookup(ip.parse().unwrap());
        let a = look("127.16.4.9");
        assert_eq!(a.prefix.unwrap().to_string(), "127.16.4.0/24");
        assert_eq!(a.isps, vec!["beta"]);
        let b = look("127.16.5.1");
        assert_eq!(b.prefix.unwrap().to_string(), "127.16.4.0/22");
        assert_eq!(b.isps, vec!["gamma", "beta"]);
        assert_eq!(look("127.31.255.255").isps, vec!["alpha"]);
        assert_eq!(look("127.32.0.0").prefix, None);
        assert_eq!(look("2001:db8:ff00::1").prefix.unwrap().to_string(), "2001:db8:ff00::/40");
        assert!(look("2001:db8:ff00::1").isps.is_empty());
        assert_eq!(look("2001:db8::1").isps, vec!["alpha"]);
        assert_eq!(look("::1").prefix, None);
    }

    fn brute_force(table: &[RoutedPrefix], ip: IpAddr) -> Option<(IpNet, Origin)> {
        let mut best: Option<&RoutedPrefix> = None;
        for routed in table {
            if routed.prefix.contains(&ip) && best.is_none_or(|b| routed.prefix.prefix_len() >= b.prefix.prefix_len()) {
                best = Some(routed);
            }
        }
        best.map(|b| (b.prefix, b.origin.clone()))
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(
            nets in prop::collection::vec((any::<u32>(), 0u8..=32, 1u32..6), 1..60),
            probes in prop::collection::vec(any::<u32>(), 1..60),
        ) {
            // Draw probes near the prefixes too, so nesting is actually exercised.
            let table: Vec<RoutedPrefix> = nets
                .iter()
                .map(|(addr, len, asn)| RoutedPrefix {
                    prefix: IpNet::new(std::net::Ipv4Addr::from(*addr).into(), *len).unwrap().trunc(),
                    origin: Origin::single(*asn),
                })
                .collect();
            let mut deduped: Vec<RoutedPrefix> = Vec::new();
            for routed in &table {
                deduped.retain(|seen| seen.prefix != routed.prefix);
                deduped.push(routed.clone());
            }
            let attributor = Attributor::new(table.clone(), &[isp("one", &[1])]);
            let near = nets.iter().zip(&probes).map(|((addr, _, _), p)| addr ^ (p & 0xff));
            for probe in probes.iter().copied().chain(near) {
                let ip = IpAddr::V4(probe.into());
                let got = attributor.lookup(ip);
                let want = brute_force(&deduped, ip);
                prop_assert_eq!(got.prefix, want.as_ref().map(|w| w.0));
                prop_assert_eq!(got.origin.cloned(), want.as_ref().map(|w| w.1.clone()));
                prop_assert_eq!(got.isps.contains(&"one"), want.is_some_and(|w| w.1.asns().contains(&1)));
            }
        }
    }
}
