use std::net::{IpAddr, SocketAddr};

use botscope_model::FeedEntry;

use super::table::push;
use super::{FeedOptions, FeedRead, each_line, family};

/// `ADDRESS[:PORT] [FAMILY]` per line; `#` starts a comment.
pub(crate) fn read(input: impl std::io::BufRead, options: &FeedOptions) -> FeedRead {
    let mut read = FeedRead::default();
    each_line(input, &mut read, |read, at, line| {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            return;
        }
        let mut words = line.split_whitespace();
        let (Some(target), name, None) = (words.next(), words.next(), words.next()) else {
            read.problem(at, "expected ADDRESS[:PORT] [FAMILY]");
            return;
        };
        let (ip, port) = if let Ok(ip) = target.parse::<IpAddr>() {
            (ip, None)
        } else if let Ok(socket) = target.parse::<SocketAddr>() {
            (socket.ip(), Some(socket.port()))
        } else {
            read.problem(at, format!("{target:?} is not an address or ADDRESS:PORT"));
            return;
        };
        push(
            read,
            at,
            FeedEntry {
                id: None,
                source: options.source.clone(),
                role: options.plain_role,
                ip,
                port,
                family: name.and_then(family),
                first_seen: options.now,
                last_seen: None,
                reference: None,
            },
        );
    });
    read
}
