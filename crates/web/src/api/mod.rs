//! `/api/v1`: JSON over HTTP, documented in docs/api.md.

pub mod botnets;
pub mod ingest;
pub mod isp;
pub mod openapi;
pub mod records;
