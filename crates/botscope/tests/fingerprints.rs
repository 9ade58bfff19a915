//! `botscope fingerprints` on a directory laid out as Recog's `xml/` is: three real Recog files (with
//! their licence) and files written from Recog's documented format (no `matches` attribute,
//! look-around, back-references, `\A`/`\z`/`\Z`, base64 and file examples, interpolated params, a
//! field the survey does not read). Every example of every loaded file must hold, as Recog's own
//! verifier checks them: every attribute an example names equals that param of the match.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use common::Scratch;

fn recog_dir(scratch: &Scratch) -> std::path::PathBuf {
    let dir = scratch.path("xml");
    std::fs::create_dir_all(&dir).unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../survey/tests/data");
    for source in ["recog", "recog-written"] {
        for entry in std::fs::read_dir(data.join(source)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn every_example_of_a_recog_layout_directory_holds_and_each_file_says_what_it_loaded() {
    let scratch = Scratch::new();
    let dir = recog_dir(&scratch);
    let run = scratch.run(&["fingerprints", "--fingerprints", dir.to_str().unwrap()]).ok();
    let line =
        |file: &str| run.stdout.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{file}: {}", run.stdout));
    assert!(line("rtsp_servers.xml").starts_with("LOAD") && line("rtsp_servers.xml").contains("15 examples"));
    assert!(line("ssh_banners.xml").contains("227 examples, 0 not loaded"), "{}", run.stdout);
    assert!(line("x509_issuers.xml").contains("(x509.issuer)") && line("x509_issuers.xml").contains("52 examples"));
    assert!(line("telnet_banners.xml").contains("(telnet.banner): 5 rules, 8 examples"), "{}", run.stdout);
    assert!(line("smtp_banners.xml").starts_with("SKIP") && line("smtp_banners.xml").contains("does not read"));
    assert!(run.stdout.trim_end().ends_with("0 failed, 0 rules not loaded"), "{}", run.stdout);
}

#[test]
fn a_wrong_expectation_or_a_pattern_that_cannot_load_fails_the_check_and_is_named() {
    let scratch = Scratch::new();
    let dir = recog_dir(&scratch);
    let ssh = dir.join("ssh_banners.xml");
    let text = std::fs::read_to_string(&ssh).unwrap();
    std::fs::write(&ssh, text.replacen(r#"service.version="4.62""#, r#"service.version="4.63""#, 1)).unwrap();
    std::fs::write(
        dir.join("http_servers.xml"),
        "<fingerprints><fingerprint pattern='(unclosed'><example>x</example></fingerprint>\
         <fingerprint pattern='^lighttpd/([\\d.]+)$'><example service.version='1.4'>lighttpd/1.4</example>\
         <param pos='1' name='service.version'/></fingerprint></fingerprints>",
    )
    .unwrap();
    let run = scratch.run(&["fingerprints", "--fingerprints", dir.to_str().unwrap()]).fails();
    assert!(run.stdout.contains(r#"service.version: expected "4.63", got Some("4.62")"#), "{}", run.stdout);
    assert!(
        run.stdout.contains("http_servers.xml (http_header.server): 1 rules, 1 examples, 1 not loaded"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not loaded: fingerprint 1 ((unclosed)"), "{}", run.stdout);
    assert!(run.stdout.trim_end().ends_with("1 failed, 1 rules not loaded"), "{}", run.stdout);
}
