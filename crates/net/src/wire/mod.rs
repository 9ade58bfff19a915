//! Protocol framing both ends of a conversation need: the survey speaks it to devices and the lab's
//! emulated devices speak it back, so it lives here rather than in either.

pub mod adb;
pub mod http;
pub mod telnet;
