//! Graph mining: how much of a server's clientele is bots.
//!
//! Scores start at 1 on the seed bots (and on clients of known C&C servers) and flow over the
//! client-server graph: a server's score is the bot share of its clients; a client inherits a
//! damped share of the best score among the servers it uses, so bots withheld from (or missing in)
//! the seed list are found through the servers they share with known bots; and the server scores
//! are taken again. Unlike plain personalised PageRank, whose mass piles up on servers everybody
//! uses (resolvers, CDNs), a share is independent of popularity.

use super::features::{ServiceClass, service_class};
use crate::seeds::Seeds;
use crate::window::Window;

/// A client inherits this much of its best server's score.
const DAMPING: f64 = 0.85;
/// Servers with fewer clients than this do not pass scores on (a scan target seen by one bot
/// would otherwise make its other visitors bots).
const MIN_CLIENTS_TO_PROPAGATE: u64 = 3;
/// Rounds of client-server propagation.
const ROUNDS: usize = 2;

/// Per-server graph scores (0..1) and exact seed-client counts, indexed like `window.servers`.
pub(crate) struct GraphScores {
    pub(crate) server: Vec<f64>,
    pub(crate) seed_clients: Vec<u64>,
}

pub(crate) fn total_clients(window: &Window, server: usize) -> u64 {
    let s = &window.servers[server];
    if s.edges_full { s.clients.count().max(s.edges.len() as u64) } else { s.edges.len() as u64 }
}

pub(crate) fn propagate(window: &Window, seeds: &Seeds) -> GraphScores {
    let mut client: Vec<f64> = window.clients.iter().map(|(_, bot)| if *bot { 1.0 } else { 0.0 }).collect();
    let seed_clients: Vec<u64> = window
        .servers
        .iter()
        .map(|s| s.edges.iter().filter(|e| window.clients[window.edges[**e as usize].client as usize].1).count() as u64)
        .collect();
    // Clients of known C&C servers are bots too.
    for s in &window.servers {
        if seeds.is_cnc(s.key.addr, s.key.port) {
            for e in &s.edges {
                client[window.edges[*e as usize].client as usize] = 1.0;
            }
        }
    }
    let totals: Vec<u64> = (0..window.servers.len()).map(|i| total_clients(window, i)).collect();
    let server_scores = |client: &[f64]| -> Vec<f64> {
        window
            .servers
            .iter()
            .zip(&totals)
            .map(|(s, total)| {
                let sum: f64 = s.edges.iter().map(|e| client[window.edges[*e as usize].client as usize]).sum();
                (sum / (*total).max(1) as f64).min(1.0)
            })
            .collect()
    };
    let mut server = server_scores(&client);
    // Resolvers, NTP servers and the like are everybody's: using one that bots also use says
    // nothing about a client (Mirai asks 8.8.8.8 for its C&C; so do households that chose it).
    let passes_on: Vec<bool> = window
        .servers
        .iter()
        .zip(&totals)
        .map(|(s, total)| {
            *total >= MIN_CLIENTS_TO_PROPAGATE
                && service_class(s.key.protocol, s.key.port) != ServiceClass::Infrastructure
        })
        .collect();
    for _ in 0..ROUNDS {
        let mut best = vec![0.0f64; client.len()];
        for edge in &window.edges {
            let s = edge.server as usize;
            if passes_on[s] {
                let c = edge.client as usize;
                best[c] = best[c].max(server[s]);
            }
        }
        for (score, inherited) in client.iter_mut().zip(best) {
            *score = score.max(DAMPING * inherited);
        }
        server = server_scores(&client);
    }
    GraphScores { server, seed_clients }
}
