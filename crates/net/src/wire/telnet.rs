//! Telnet command bytes (RFC 854).

/// Interpret As Command (RFC 854).
pub const IAC: u8 = 255;
/// DON'T.
pub const DONT: u8 = 254;
/// DO.
pub const DO: u8 = 253;
/// WON'T.
pub const WONT: u8 = 252;
/// WILL.
pub const WILL: u8 = 251;
/// Sub-negotiation begins.
pub const SB: u8 = 250;
/// Sub-negotiation ends.
pub const SE: u8 = 240;
/// No operation.
pub const NOP: u8 = 241;
