//! One module per command.

pub mod config;
pub mod flow;
pub mod ingest;
pub mod isp;
pub mod lab;
pub mod survey;
pub mod telescope;
