//! The API contract: `/api/v1/openapi.json` describes what a live centre answers. schemathesis
//! (PyPI), a property-based API tester, generates requests from the description (valid ones,
//! and edge cases of every parameter) against a centre holding the example records, and checks
//! that no answer is a server error and every answer's status, content type, headers and body
//! are the ones described.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use common::{Scratch, make_token, start_center};

#[test]
fn a_live_centre_answers_as_its_openapi_description_says() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/examples/records.jsonl");
    scratch.run(&["--db", &db, "ingest", examples]).ok();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let (_centre, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);
    let schemathesis = common::venv().join("bin/schemathesis");
    // Bounded: at most 40 generated cases per operation, 10 s per request, 10 minutes in all.
    let output = std::process::Command::new("timeout")
        .arg("600")
        .arg(&schemathesis)
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--seed", "20", "--request-timeout", "10", "--no-color"])
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found answers that break the description:\n{report}");
    // It really tested: every operation it found (all of them), hundreds of cases.
    let count = |prefix: &str| -> Option<u64> {
        report.lines().find_map(|l| l.trim().strip_prefix(prefix)?.split('/').next()?.trim().parse().ok())
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        selected >= Some(10) && tested == selected,
        "{selected:?} selected, {tested:?} tested:
{report}"
    );
    let cases: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_suffix(" passed")?.split(" generated, ").nth(1)?.parse().ok())
        .unwrap_or(0);
    assert!(cases >= 300, "only {cases} cases:\n{report}");
}
