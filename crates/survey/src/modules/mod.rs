//! One module per protocol the survey speaks: the ones it logs into (telnet, SSH, HTTP) and the
//! ones it only reads a greeting from (ADB, FTP, RTSP).

pub mod adb;
pub mod ftp;
pub mod http;
pub mod rtsp;
pub mod ssh;
pub mod telnet;
