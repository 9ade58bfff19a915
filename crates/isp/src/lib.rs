//! Which ISP an address belongs to.
//!
//! Two inputs: a routing table saying which AS originates each prefix ([`pfx2as`], CAIDA's
//! RouteViews prefix2as format) and the registry of participating ISPs with their ASNs
//! ([`registry`]). An [`Attributor`] joins them and answers, for any IPv4 or IPv6 address, the
//! most specific routed prefix holding it, its origin AS(es), and the ISPs those ASes belong to.
//!
//! Boundaries: answers lookups over the data it is given (read through `botscope_input`); it
//! fetches nothing from the network and writes no store (the binary loads tables into the store).
#![deny(missing_docs)]

mod attribution;
pub mod pfx2as;
pub mod registry;

pub use attribution::{Attribution, Attributor};
