//! Sharing what the centre knows in the formats other centres already read.
//!
//! * [`stix`]: STIX 2.1 bundles: the producer's identity, C&C indicators and infrastructure,
//!   botnets as infrastructure, malware families, the relationships between them, and darknet
//!   sightings, each marked with its TLP level by the official marking-definition ids.
//! * [`misp`]: a MISP feed directory (manifest, one event per botnet, hashes).
//! * [`taxii`]: TAXII 2.1 collections, publishing into them, and pulling a partner's collection.
//!
//! Boundaries: it reads the store and writes files or TAXII records; it pulls only from the servers
//! the operator names, each reply within a size cap.
#![deny(missing_docs)]

pub mod misp;
pub mod stix;
pub mod taxii;
