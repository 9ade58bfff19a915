//! Any bytes as a run of export datagrams from two exporters into one decoder (so templates from
//! one datagram meet data in the next), then the decoded flows through a window and the detector.
#![no_main]

use botscope_flow::decode::Decoder;
use botscope_flow::detect::{DetectConfig, Detector, Model};
use botscope_flow::seeds::Seeds;
use botscope_flow::window::{Window, WindowConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    let mut flows = Vec::new();
    let mut rest = data;
    let exporters = ["127.0.0.1:2055".parse().unwrap(), "127.0.0.2:2055".parse().unwrap()];
    // Each datagram: one length byte (times 8), one exporter bit, then the bytes.
    while let Some((&header, tail)) = rest.split_first() {
        let len = (usize::from(header >> 1) * 8).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        let _ = decoder.decode(exporters[usize::from(header & 1)], datagram, 0, &mut flows);
        rest = next;
    }
    let mut seeds = Seeds::default();
    for flow in flows.iter().take(4) {
        seeds.insert_bot(flow.src);
    }
    let mut window = Window::new(WindowConfig::default(), i64::MIN / 4, i64::MAX / 4);
    for flow in &flows {
        window.add(flow, &seeds, false);
    }
    let config = DetectConfig { min_seed_clients: 1, include_private: true, ..DetectConfig::default() };
    let mut detector = Detector::new(Model::shipped().unwrap(), config);
    for candidate in detector.candidates(&window, &seeds) {
        assert!((0.0..=1.0).contains(&candidate.score));
    }
});
