//! One module per protocol the survey logs into.

pub mod adb;
pub mod http;
pub mod ssh;
pub mod telnet;
