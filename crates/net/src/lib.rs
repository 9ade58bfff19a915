//! Network primitives the sensors share: addresses and packet headers ([`packet`]: frame to
//! header fields, for the telescope's captures and the packet samples inside sFlow datagrams),
//! distinct-count sketches ([`sketch`]), the splitmix64 hash ([`hash`]) and the keyed permutation
//! built on it ([`permutation`]), and the protocol framing both the survey and the lab's devices
//! speak ([`wire`]: telnet commands, ADB messages, HTTP auth parameters).
//!
//! Boundaries: this crate sits beneath `telescope`, `flow`, `survey` and `lab` so that none of
//! them reaches sideways into another for these. It parses bytes and counts; it opens no socket,
//! reads no file and knows no record format beyond `botscope_model`'s transport names.

#![deny(missing_docs)]

pub mod hash;
pub mod packet;
pub mod permutation;
pub mod sketch;
pub mod wire;

pub use hash::splitmix;
pub use packet::Addr;
