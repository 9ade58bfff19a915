//! Helpers for running the real `botscope` binary in a scratch directory.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// `botscope` in this directory, with no configuration or store leaking in from outside.
    pub fn botscope(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_botscope"));
        command.current_dir(self.dir.path()).env_remove("BOTSCOPE_CONFIG").env_remove("BOTSCOPE_DB");
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.botscope().args(args).output().unwrap())
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .botscope()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || pipe.write_all(&data));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        Run::from(output)
    }

    pub fn db(&self) -> PathBuf {
        self.path("botscope.db")
    }

    /// Loads the example routing table and ISP registry (data/examples) into `db`.
    pub fn load_example_isps(&self, db: &Path) {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/examples");
        let pfx2as = format!("{examples}/pfx2as.txt");
        let registry = format!("{examples}/isps.toml");
        let db = db.to_str().unwrap();
        self.run(&["--db", db, "isp", "load", "--pfx2as", &pfx2as, "--registry", &registry]).ok();
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn fails(self) -> Run {
        assert_eq!(self.code, Some(1), "expected exit 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A small deterministic generator; tests seed it from the clock (printing the seed) so each run
/// sees data it has not seen before, and BOTSCOPE_TEST_SEED replays a failure.
pub struct Rng(u64);

impl Rng {
    pub fn from_clock(test: &str) -> Rng {
        let seed = std::env::var("BOTSCOPE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: seed {seed} (replay with BOTSCOPE_TEST_SEED={seed})");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A valid finding line for host number `n` (distinct n, distinct record).
pub fn finding_line(n: u32) -> String {
    let ip = std::net::Ipv4Addr::from(0x7f10_0000 + n);
    format!(
        r#"{{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"{ip}","port":23,"protocol":"telnet","issue":"default_credential","credential_id":{}}}"#,
        n % 62
    )
}

/// The id the centre keeps a line under when the token with label `sensor` sent it without a
/// sensor name (the centre fills the name in and derives the id from the record as kept).
#[allow(dead_code, reason = "not every test file posts records")]
pub fn id_as_sent_by(line: &str, sensor: &str) -> uuid::Uuid {
    let mut record = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
    if let Some(slot) = record.sensor_mut() {
        slot.get_or_insert_with(|| sensor.to_string());
    }
    record.rederive_id()
}

pub async fn open_sqlite(path: &Path) -> botscope_store::SqliteStore {
    botscope_store::SqliteStore::open(path, 1).await.unwrap()
}

/// A child process killed when the test ends, even by a panic.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops a process with SIGTERM (as an operator would) and waits for it.
pub fn terminate(mut process: Reaped) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &process.0.id().to_string()]).status().unwrap();
    process.0.wait().unwrap()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `botscope flow collect --listen 127.0.0.1:PORT ARGS...` and waits until it listens;
/// its log goes to the test's output.
pub fn start_flow_collector(scratch: &Scratch, port: u16, args: &[&str]) -> Reaped {
    use std::io::BufRead;
    let listen = format!("127.0.0.1:{port}");
    let mut child = scratch
        .botscope()
        .args(["flow", "collect", "--listen", &listen])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("collector: {line}");
            if line.contains("collecting") {
                let _ = tx.send(());
            }
        }
    });
    let process = Reaped(child);
    rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the collector did not start");
    process
}

/// Makes a centre token with `botscope token create` and returns it (the last word printed).
pub fn make_token(scratch: &Scratch, db: &str, role: &str, isp: Option<&str>, label: Option<&str>) -> String {
    let mut args = vec!["--db", db, "token", "create", "--role", role];
    if let Some(isp) = isp {
        args.extend(["--isp", isp]);
    }
    if let Some(label) = label {
        args.extend(["--label", label]);
    }
    let run = scratch.run(&args).ok();
    run.stdout.lines().last().and_then(|l| l.split_whitespace().last()).expect("a token").to_string()
}

/// Starts `botscope --db DB serve` on a free loopback port and waits until /api/v1/health answers.
/// Returns the process and the base URL.
#[allow(clippy::disallowed_methods, reason = "polls the centre this test started on loopback; no survey target")]
pub fn start_center(scratch: &Scratch, db: &str, extra: &[&str]) -> (Reaped, String) {
    let port = botscope_testkit::free_loopback_port();
    let listen = format!("127.0.0.1:{port}");
    let child = scratch
        .botscope()
        .args(["--db", db, "serve", "--listen", &listen])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let process = Reaped(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(&listen) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the centre did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (process, format!("http://{listen}"))
}

/// Waits until something listens on 127.0.0.1:`port` (a server a test started), at most 30 s.
#[allow(clippy::disallowed_methods, reason = "polls a server this test started on loopback; no survey target")]
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// GET `url` with a bearer token: the status and the body.
pub async fn get_with_token(url: &str, token: &str) -> (reqwest::StatusCode, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Every record of a JSON Lines file (blank lines skipped).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `cnc` records as the centre keeps them: a window scored again (late flows, or its bots came
/// back in the next one) is emitted again in full, ranks from 1; per window only its last
/// emission stands. Output order is kept.
pub fn latest_emissions(candidates: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let mut last_start: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if c["rank"] == 1 {
            last_start.insert(c["window_start"].as_str().unwrap().to_string(), i);
        }
    }
    candidates
        .into_iter()
        .enumerate()
        .filter(|(i, c)| last_start.get(c["window_start"].as_str().unwrap()).is_none_or(|start| i >= start))
        .map(|(_, c)| c)
        .collect()
}

/// Distinct record ids in a JSON Lines file: a window scored again writes its `cnc` records again
/// under the same ids, and a store holds one record per id.
pub fn distinct_ids(path: &Path) -> u64 {
    let ids: std::collections::HashSet<String> =
        json_lines(path).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    ids.len() as u64
}

/// The venv of PyPI tools scripts/test makes (BOTSCOPE_VENV, else target/test-venv).
pub fn venv() -> PathBuf {
    let path = std::env::var_os("BOTSCOPE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/test-venv")));
    assert!(
        path.join("bin/python").exists(),
        "the test venv is missing at {}: run scripts/test (it makes it) or set BOTSCOPE_VENV",
        path.display()
    );
    path
}

/// Posts a form as a browser does, with a cookie if given.
pub async fn post_form(client: &reqwest::Client, url: &str, cookie: Option<&str>, body: &str) -> reqwest::Response {
    let mut request =
        client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Posts the sign-in form as a browser does: with the nonce of the form it was given and its cookie.
pub async fn post_login(client: &reqwest::Client, base: &str, token: &str, next: &str) -> reqwest::Response {
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = form.text().await.unwrap();
    let nonce = page.split("name=\"nonce\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let body = format!("token={token}&next={next}&nonce={nonce}");
    post_form(client, &format!("{base}/login"), Some(&cookie), &body).await
}

/// Signs in with a token; returns the session cookie and where the server sent the browser.
pub async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> (String, String) {
    let response = post_login(client, base, token, "").await;
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let set =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let session = set.iter().find(|c| c.starts_with("botscope_session=")).expect("a session cookie");
    let cookie = session.split(';').next().unwrap().to_string();
    assert!(session.contains("HttpOnly; SameSite=Strict"));
    (cookie, response.headers()["location"].to_str().unwrap().to_string())
}
