//! ISP flow analysis: decoding flow exports and files, and finding botnet C&C servers in them.
//!
//! [`decode`] turns NetFlow v5/v9, IPFIX and sFlow datagrams into [`Flow`]s; [`input`] reads the
//! flow files users already have (Zeek conn.log, Argus, nfdump CSV, botscope's JSON lines);
//! [`export`] encodes flows for the lab's synthetic ISP; [`exporters`] decides whose datagrams a
//! collector decodes. [`window`] gathers a window of flows into a client-server graph with
//! per-server features, and [`detect`] scores servers by graph propagation from known bots and a
//! learned model. Subscriber addresses stay inside this crate: what [`detect`] returns names
//! servers only. [`session`] runs the analysis for a program (flow files, or exports on UDP) and
//! hands `cnc` records to any `RecordSink`; [`evaluate`] judges and trains the detector against a
//! truth file.
//!
//! Boundaries: it listens for exports and reads flow files, never sends; what it shares names no
//! subscriber address (`cnc` records count clients); it knows no store or centre.
#![deny(missing_docs)]

pub mod analyze;
pub mod decode;
pub mod detect;
pub mod evaluate;
pub mod export;
pub mod exporters;
mod flow;
pub mod input;
pub mod seeds;
pub mod session;
pub mod window;

pub use flow::{EARLIEST_MS, Flow, FlowLine, FlowLineError, LATEST_MS, protocol, time_in_range};
