//! Addresses botscope never connects to whatever a scope says, outside the lab.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 special-purpose ranges (RFC 6890 and the IANA special-purpose registry), the ranges ZMap's
/// default blocklist names. Loopback is here too: it is only ever allowed in lab mode, which
/// replaces this list with "loopback only".
pub const BUILTIN_BLOCKLIST: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 791)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122); allowed only with --lab"),
    ("169.254.0.0/16", "link local (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved for future use (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
];

/// IPv6 ranges never connected to outside the lab: the IANA IPv6 special-purpose registry, the
/// other non-unicast blocks of the address architecture, and everything outside global unicast
/// (2000::/3), which IANA has not allocated. Specific entries come first so that a refusal names
/// the most precise reason. Prefixes that lead to an IPv4 address through a translator or relay
/// (64:ff9b::/96, 2002::/16) are refused outright, so no IPv6 form can reach an IPv4 address the
/// IPv4 scope would refuse. IPv4-mapped addresses (::ffff:0:0/96) are not listed: they are judged
/// as the IPv4 address they name.
pub const BUILTIN_BLOCKLIST_V6: &[(&str, &str)] = &[
    ("::/128", "unspecified address (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291); allowed only with --lab"),
    ("64:ff9b::/96", "IPv4/IPv6 translation, well-known prefix (RFC 6052): leads to an IPv4 address"),
    ("64:ff9b:1::/48", "IPv4/IPv6 translation, local use (RFC 8215)"),
    ("100::/64", "discard only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    ("2001::/23", "IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4 (RFC 3056): leads to an IPv4 address"),
    ("2620:4f:8000::/48", "AS112 direct delegation (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local unicast (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
    ("::/3", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("4000::/2", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("8000::/2", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("c000::/3", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("e000::/4", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("f000::/5", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("f800::/6", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
    ("fe00::/9", "outside global unicast 2000::/3: reserved by the IETF (RFC 4291)"),
];

/// In lab mode the only IPv4 addresses allowed at all.
pub const LAB_RANGE: &str = "127.0.0.0/8";

/// In lab mode the only IPv6 address allowed at all.
pub const LAB_RANGE_V6: &str = "::1/128";

pub(crate) static V4: LazyLock<Vec<(Ipv4Net, &'static str, &'static str)>> = LazyLock::new(|| {
    BUILTIN_BLOCKLIST
        .iter()
        .map(|(net, reason)| (net.parse().expect("blocklist constants parse"), *net, *reason))
        .collect()
});

pub(crate) static V6: LazyLock<Vec<(Ipv6Net, &'static str, &'static str)>> = LazyLock::new(|| {
    BUILTIN_BLOCKLIST_V6
        .iter()
        .map(|(net, reason)| (net.parse().expect("blocklist constants parse"), *net, *reason))
        .collect()
});

/// The built-in blocklist entry holding `ip`, as (range, reason).
pub fn blocklisted_v4(ip: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    V4.iter().find(|(net, ..)| net.contains(&ip)).map(|(_, range, reason)| (*range, *reason))
}

/// The built-in IPv6 blocklist entry holding `ip`, as (range, reason).
pub fn blocklisted_v6(ip: Ipv6Addr) -> Option<(&'static str, &'static str)> {
    V6.iter().find(|(net, ..)| net.contains(&ip)).map(|(_, range, reason)| (*range, *reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constant_parses_as_a_prefix_without_host_bits() {
        for (net, _) in BUILTIN_BLOCKLIST {
            let parsed: Ipv4Net = net.parse().unwrap();
            assert_eq!(parsed, parsed.trunc(), "{net}");
        }
        for (net, _) in BUILTIN_BLOCKLIST_V6 {
            let parsed: Ipv6Net = net.parse().unwrap();
            assert_eq!(parsed, parsed.trunc(), "{net}");
        }
        assert_eq!(V4.len(), BUILTIN_BLOCKLIST.len());
        assert_eq!(V6.len(), BUILTIN_BLOCKLIST_V6.len());
    }

    #[test]
    fn the_ipv6_list_leaves_only_global_unicast() {
        let blocked = |text: &str| blocklisted_v6(text.parse().unwrap());
        for address in
            ["::", "::1", "::2", "64:ff9b::c633:6401", "100::1", "2001::1", "2001:db8::1", "2002:c633:6401::1"]
        {
            assert!(blocked(address).is_some(), "{address}");
        }
        for address in ["fc00::1", "fd12::1", "fe80::1", "fec0::1", "ff02::1", "4000::1", "8000::1", "3fff::1"] {
            assert!(blocked(address).is_some(), "{address}");
        }
        assert_eq!(blocked("fe80::1").unwrap().0, "fe80::/10", "the specific reason wins");
        assert_eq!(blocked("::1").unwrap().0, "::1/128");
        for address in ["2400:cb00::1", "2606:4700::1", "2a00:1450::1", "2001:200::1", "3ffe::1"] {
            assert!(blocked(address).is_none(), "{address}");
        }
    }
}
