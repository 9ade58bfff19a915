//! The command line itself: version, help, configuration.

mod common;

use common::Scratch;

#[test]
fn version_and_help_teach() {
    let scratch = Scratch::new();
    let version = scratch.run(&["--version"]).ok();
    assert_eq!(version.stdout.trim(), format!("botscope {}", env!("CARGO_PKG_VERSION")));
    for command in [
        &["--help"][..],
        &["ingest", "--help"],
        &["isp", "load", "--help"],
        &["isp", "lookup", "--help"],
        &["config", "check", "--help"],
    ] {
        let help = scratch.run(command).ok().stdout;
        assert!(help.contains("Examples:"), "{command:?} help has no examples:\n{help}");
    }
}

#[test]
fn config_check_prints_file_environment_and_flags_applied() {
    let scratch = Scratch::new();
    let config = scratch.write("site.toml", "[ingest]\nbatch_size = 500\n\n[log]\nformat = \"json\"\n");
    let out = scratch
        .botscope()
        .args(["config", "check", "--log-format", "text"])
        .env("BOTSCOPE_CONFIG", &config)
        .env("BOTSCOPE_DB", "postgres://ops:hunter2@127.0.0.1:5432/centre")
        .output()
        .unwrap();
    let out = common::Run::from(out).ok();
    assert!(out.stdout.contains("batch_size = 500"), "{}", out.stdout);
    assert!(out.stdout.contains("format = \"text\""), "flag must beat the file:\n{}", out.stdout);
    assert!(out.stdout.contains("postgres://ops:***@127.0.0.1:5432/centre"), "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    assert!(out.stdout.contains("site.toml"));
}

#[test]
fn botscope_toml_in_the_working_directory_is_found() {
    let scratch = Scratch::new();
    scratch.write("botscope.toml", "[store]\nurl = \"elsewhere.db\"\n");
    let out = scratch.run(&["config", "check"]).ok();
    assert!(
        out.stdout.contains("url = \"elsewhere.db\"") && out.stdout.contains("read from botscope.toml"),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_configuration_names_the_key_and_line() {
    let scratch = Scratch::new();
    let cases = [
        ("[store]\nurl = \"a.db\"\n\n[ingest]\nbatchsize = 10\n", &["batchsize", "line 5"][..]),
        ("[log]\nlevel = \"chatty\"\n", &["chatty", "line 2"]),
        ("[ingest]\nmax_line_bytes = 12\n", &["max_line_bytes", "line 2", "1024"]),
        ("[store]\nurl = \"ftp://x\"\n", &["store.url", "ftp"]),
        ("[store\n", &["line 1"]),
    ];
    for (text, expected) in cases {
        let path = scratch.write("bad.toml", text);
        let out = scratch.run(&["--config", path.to_str().unwrap(), "config", "check"]).fails();
        for needle in expected {
            assert!(out.stderr.contains(needle), "{text:?}: stderr lacks {needle:?}:\n{}", out.stderr);
        }
    }
    let out = scratch.run(&["--config", "missing.toml", "config", "check"]).fails();
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}
