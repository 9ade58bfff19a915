//! `botscope credentials`: the shipped dictionary passes its check, broken revisions are refused
//! with FILE:LINE messages, and the survey's default budget covers the whole dictionary.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use common::Scratch;

const SHIPPED: &str = include_str!("../../../data/credentials.toml");

/// 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the text"));
    text[..at].matches('\n').count() + 1
}

/// The number after `version ` and before ` pairs` in the check's summary.
fn pairs_in_summary(stdout: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with("version ")).expect("summary line");
    line.split(": ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_shipped_dictionary_is_valid_and_holds_600_pairs_or_more() {
    let scratch = Scratch::new();
    let shipped = scratch.run(&["credentials", "check"]).ok();
    assert!(shipped.stdout.contains("valid"), "{}", shipped.stdout);
    assert!(pairs_in_summary(&shipped.stdout) >= 600, "{}", shipped.stdout);
    for source in ["mirai ", "mirai-hades ", "defaultcreds-cheat-sheet "] {
        assert!(shipped.stdout.contains(source), "no {source}in\n{}", shipped.stdout);
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/credentials.toml");
    let explicit = scratch.run(&["credentials", "check", file]).ok();
    assert_eq!(pairs_in_summary(&explicit.stdout), pairs_in_summary(&shipped.stdout));
}

#[test]
fn a_revision_that_reuses_an_id_is_refused_at_its_line() {
    let scratch = Scratch::new();
    let broken = SHIPPED.replacen("id = 6\n", "id = 5\n", 1);
    let path = scratch.write("dup.toml", &broken);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    let first = line_of(&broken, "[[credential]]\nid = 5\n");
    let second = line_of(&broken, "[[credential]]\nid = 5\nusername = \"root\"\npassword = \"xmhdipc\"");
    let expected = format!("dup.toml:{second}: credential id 5 is used twice (first on line {first})");
    assert!(run.stderr.contains(&expected), "wanted {expected:?} in\n{}", run.stderr);
    assert!(run.stderr.contains("1 problem(s)"), "{}", run.stderr);
}

#[test]
fn a_revision_with_a_pair_without_source_is_refused() {
    let scratch = Scratch::new();
    let entry = SHIPPED.find("\nid = 62\n").unwrap();
    let sources = entry + SHIPPED[entry..].find("sources = [").unwrap();
    let end = sources + SHIPPED[sources..].find('\n').unwrap();
    let broken = format!("{}sources = []{}", &SHIPPED[..sources], &SHIPPED[end..]);
    let path = scratch.write("nosource.toml", &broken);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    let line = line_of(&broken, "[[credential]]\nid = 62\n");
    assert!(run.stderr.contains(&format!("nosource.toml:{line}: credential 62 names no source")), "{}", run.stderr);

    let unknown = SHIPPED.replacen("sources = [\"vendor-default\"", "sources = [\"hearsay\"", 1);
    let path = scratch.write("unknown.toml", &unknown);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    assert!(run.stderr.contains("names source \"hearsay\", which has no [source.hearsay] table"), "{}", run.stderr);
}

#[test]
fn a_revision_without_a_complete_change_log_entry_is_refused() {
    let scratch = Scratch::new();
    // A new version with no change-log entry of its own.
    let bumped = SHIPPED.replacen("\nversion = 2\n", "\nversion = 3\n", 1);
    let path = scratch.write("bumped.toml", &bumped);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    let line = line_of(&bumped, "\nversion = 3\n") + 1;
    let expected = format!("bumped.toml:{line}: the file is version 3 but the latest change is version 2");
    assert!(run.stderr.contains(&expected), "wanted {expected:?} in\n{}", run.stderr);

    // The latest change names nobody who approved it.
    let last = SHIPPED.rfind("approved_by = ").unwrap();
    let end = last + SHIPPED[last..].find('\n').unwrap() + 1;
    let unapproved = format!("{}{}", &SHIPPED[..last], &SHIPPED[end..]);
    let path = scratch.write("unapproved.toml", &unapproved);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    assert!(run.stderr.contains("change 2 has no approved_by"), "{}", run.stderr);

    // Approved by the one who proposed it.
    let proposer = SHIPPED[SHIPPED.rfind("proposed_by = ").unwrap()..].lines().next().unwrap().to_string();
    let who = proposer.trim_start_matches("proposed_by = ");
    let own = format!("{}approved_by = {who}\n{}", &SHIPPED[..last], &SHIPPED[end..]);
    let path = scratch.write("own.toml", &own);
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    assert!(run.stderr.contains("is approved by its proposer"), "{}", run.stderr);
}

#[test]
fn a_file_that_is_not_toml_is_refused_at_its_line_and_a_missing_one_is_an_error() {
    let scratch = Scratch::new();
    let path = scratch.write("syntax.toml", "version = 1\n\n[[credential]]\nid = \n");
    let run = scratch.run(&["credentials", "check", path.to_str().unwrap()]).fails();
    assert!(run.stderr.contains("syntax.toml:4:"), "{}", run.stderr);
    let run = scratch.run(&["credentials", "check", "missing.toml"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("cannot read missing.toml"), "{}", run.stderr);
}

#[test]
fn the_list_shows_the_trial_order_and_never_a_password() {
    let scratch = Scratch::new();
    let run = scratch.run(&["credentials", "list", "--limit", "3"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[1].starts_with("1\t1\t10\troot\t"), "{}", run.stdout);
    assert!(!run.stdout.contains("xc3511"), "{}", run.stdout);
}

#[test]
fn regression_the_default_budget_covers_the_whole_dictionary_on_every_login_port() {
    // The default was 100 attempts per host with a 192-pair dictionary: most pairs were never
    // tried on a device that allowed it.
    let scratch = Scratch::new();
    let pairs = pairs_in_summary(&scratch.run(&["credentials", "check"]).ok().stdout);
    let plan = scratch
        .run(&[
            "survey",
            "--lab",
            "--scope",
            "127.0.0.1/32",
            "--ports",
            "10023/telnet,10022/ssh,10080/http",
            "--dry-run",
        ])
        .ok();
    let expected = format!("{} login attempts per host; dictionary of {pairs} pairs", pairs * 3);
    assert!(plan.stdout.contains(&expected), "wanted {expected:?} in\n{}", plan.stdout);
    let one_port =
        scratch.run(&["survey", "--lab", "--scope", "127.0.0.1/32", "--ports", "10023/telnet", "--dry-run"]).ok();
    assert!(one_port.stdout.contains(&format!(" {pairs} login attempts per host")), "{}", one_port.stdout);
    let given = scratch
        .run(&[
            "survey",
            "--lab",
            "--scope",
            "127.0.0.1/32",
            "--ports",
            "10023/telnet",
            "--max-attempts-per-host",
            "5",
            "--dry-run",
        ])
        .ok();
    assert!(given.stdout.contains(" 5 login attempts per host"), "{}", given.stdout);
}

#[test]
fn every_credentials_help_ends_with_examples() {
    let scratch = Scratch::new();
    for command in
        [&["credentials", "--help"][..], &["credentials", "check", "--help"], &["credentials", "list", "--help"]]
    {
        let help = scratch.run(command).ok().stdout;
        assert!(help.contains("Examples:\n  botscope credentials check"), "{command:?}:\n{help}");
    }
}
