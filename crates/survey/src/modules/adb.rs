//! Android Debug Bridge framing, shared with the lab (`botscope_net::wire::adb`).

pub use botscope_net::wire::adb::*;
