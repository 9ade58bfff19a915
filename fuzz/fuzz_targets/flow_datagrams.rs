//! Any bytes as a run of export datagrams from two exporters into one decoder (so templates from
//! one datagram meet data in the next), then the decoded flows through a window and the detector.
//!
//! Each datagram is steered into one of the four decoders (NetFlow v5, v9, IPFIX, sFlow) or left
//! as it is, so every decoder gets most of the run whatever version bytes the input starts with.
//! cargo fuzz builds with debug assertions: an arithmetic overflow anywhere is a crash. Every flow
//! that comes out must have its times in range and its end not before its start.
#![no_main]

use botscope_flow::decode::Decoder;
use botscope_flow::detect::{DetectConfig, Detector, Model};
use botscope_flow::seeds::Seeds;
use botscope_flow::time_in_range;
use botscope_flow::window::{Window, WindowConfig};
use libfuzzer_sys::fuzz_target;

/// Version bytes each decoder recognises.
const VERSIONS: [&[u8]; 4] = [&[0, 5], &[0, 9], &[0, 10], &[0, 0, 0, 5]];

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new();
    let mut flows = Vec::new();
    let mut rest = data;
    let exporters = ["127.0.0.1:2055".parse().unwrap(), "127.0.0.2:2055".parse().unwrap()];
    // Each datagram: a control byte (bit 0 the exporter, bits 1-3 the decoder to steer to, 0 for
    // none), a length byte (times 8), then the bytes.
    while let [control, length, tail @ ..] = rest {
        let len = (usize::from(*length) * 8).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        let mut datagram = bytes.to_vec();
        if let Some(version) = VERSIONS.get(usize::from((control >> 1) & 7).wrapping_sub(1)) {
            let n = version.len().min(datagram.len());
            datagram[..n].copy_from_slice(&version[..n]);
        }
        let before = flows.len();
        let _ = decoder.decode(exporters[usize::from(control & 1)], &datagram, 1_793_581_200_000, &mut flows);
        for flow in &flows[before..] {
            assert!(time_in_range(flow.start_ms) && time_in_range(flow.end_ms), "{flow:?}");
            assert!(flow.start_ms <= flow.end_ms, "{flow:?}");
        }
        rest = next;
    }
    assert_eq!(decoder.stats.flows, flows.len() as u64);
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
