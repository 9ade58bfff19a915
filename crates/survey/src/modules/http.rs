//! HTTP and HTTPS: the first page, its `Server` header and title, and Basic and Digest (RFC 7617,
//! RFC 7616) logins. HTML form logins differ per model and are not tried; a form page is reported
//! as such.
//!
//! The response parser is a pure function over bytes (fuzzed in `fuzz/fuzz_targets/http_response.rs`);
//! bodies are read up to a cap, so a device that streams forever costs one bounded buffer.

use base64::Engine;
use md5::{Digest, Md5};

use crate::conn::{ConnError, Conversation, Stream};
use crate::login::{Attempt, LoginContext, LoginOutcome};

/// Longest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most body bytes kept (the rest of a longer body ends the connection's reuse).
pub const MAX_BODY: usize = 64 * 1024;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn keeps_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(value) if value.contains("close") => false,
            Some(value) if value.contains("keep-alive") => true,
            _ => self.version == "HTTP/1.1",
        }
    }
}

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The status line is not HTTP.
    #[error("not an HTTP response")]
    NotHttp,
    /// A header line is malformed.
    #[error("malformed header line")]
    BadHeader,
    /// The head is longer than [`MAX_HEAD`].
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    /// A chunk size line is malformed.
    #[error("malformed chunked body")]
    BadChunk,
}

/// Parses a response head at the start of `bytes`. `Ok(None)`: incomplete, read more.
/// On success returns the head and the number of bytes it took.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    parse_message_head(bytes, "HTTP/")
}

/// A response head of an HTTP-shaped protocol whose status line starts with `protocol` (RTSP
/// replies as `RTSP/1.0 200 OK` with HTTP's header syntax).
pub fn parse_message_head(bytes: &[u8], protocol: &str) -> Result<Option<(Head, usize)>, HttpError> {
    let prefix = protocol.as_bytes();
    if bytes.len() >= prefix.len() && !bytes.starts_with(prefix) {
        return Err(HttpError::NotHttp);
    }
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).or_else(|| {
        // Some embedded servers end lines with a bare LF.
        bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
    }) else {
        return if bytes.len() > MAX_HEAD { Err(HttpError::HeadTooLong) } else { Ok(None) };
    };
    if end > MAX_HEAD {
        return Err(HttpError::HeadTooLong);
    }
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split('\n').map(|line| line.trim_end_matches('\r'));
    let status_line = lines.next().ok_or(HttpError::NotHttp)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().filter(|v| v.starts_with(protocol)).ok_or(HttpError::NotHttp)?.to_string();
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or(HttpError::NotHttp)?;
    let mut headers = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(HttpError::BadHeader)?;
        if name.is_empty() || name.contains(' ') {
            return Err(HttpError::BadHeader);
        }
        if headers.len() < 100 {
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    Ok(Some((Head { version, status, headers }, end)))
}

/// A response: head and (capped) body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The head.
    pub head: Head,
    /// Up to [`MAX_BODY`] bytes of body.
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub reusable: bool,
}

impl Response {
    /// The page's `<title>`, whitespace collapsed.
    pub fn title(&self) -> Option<String> {
        html_title(&self.body)
    }

    /// Whether the page asks for a password in a form.
    pub fn has_password_form(&self) -> bool {
        let body = String::from_utf8_lossy(&self.body).to_ascii_lowercase();
        body.contains("type=\"password\"") || body.contains("type='password'") || body.contains("type=password")
    }
}

/// The `<title>` of an HTML page.
pub fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title: String = text.get(start..end)?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then(|| title.chars().take(200).collect())
}

/// An HTTP/1.1 connection.
pub struct Client<S> {
    conversation: Conversation<S>,
    host: String,
    buffer: Vec<u8>,
}

impl<S: Stream> Client<S> {
    /// Wraps a connected stream; `host` is the Host header value.
    pub fn new(conversation: Conversation<S>, host: String) -> Client<S> {
        Client { conversation, host, buffer: Vec::new() }
    }

    /// Sends `GET path` with an optional Authorization header and reads the response.
    pub async fn get(&mut self, path: &str, authorization: Option<&str>) -> Result<Response, ConnError> {
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: botscope-survey (+see scanning policy)\r\nAccept: */*\r\nConnection: keep-alive\r\n",
            self.host
        );
        if let Some(value) = authorization {
            request.push_str("Authorization: ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        self.conversation.send(request.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Response, ConnError> {
        let (head, used) = loop {
            match parse_head(&self.buffer).map_err(|e| ConnError::Protocol(e.to_string()))? {
                Some(parsed) => break parsed,
                None => {
                    self.conversation.read_some(&mut self.buffer).await?;
                }
            }
        };
        self.buffer.drain(..used);
        let chunked = head.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = head.header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
        let mut reusable = head.keeps_alive();
        let no_body = head.status == 204 || head.status == 304 || (100..200).contains(&head.status);
        let body = if no_body {
            Vec::new()
        } else if chunked {
            self.read_chunked(&mut reusable).await?
        } else if let Some(length) = length {
            if length > MAX_BODY {
                reusable = false;
            }
            let keep = length.min(MAX_BODY);
            while self.buffer.len() < keep {
                self.conversation.read_some(&mut self.buffer).await?;
            }
            let body: Vec<u8> = self.buffer.drain(..keep).collect();
            if length > MAX_BODY {
                self.buffer.clear();
            }
            body
        } else {
            // Delimited by close.
            reusable = false;
            loop {
                if self.buffer.len() >= MAX_BODY {
                    break;
                }
                match self.conversation.read_some(&mut self.buffer).await {
                    Ok(_) => {}
                    Err(ConnError::Closed | ConnError::Reset) => break,
                    Err(ConnError::Timeout) if !self.buffer.is_empty() => break,
                    Err(error) => return Err(error),
                }
            }
            self.buffer.truncate(MAX_BODY);
            std::mem::take(&mut self.buffer)
        };
        Ok(Response { head, body, reusable })
    }

    async fn read_chunked(&mut self, reusable: &mut bool) -> Result<Vec<u8>, ConnError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(position) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                    break position;
                }
                if self.buffer.len() > 1024 {
                    return Err(ConnError::Protocol(HttpError::BadChunk.to_string()));
                }
                self.conversation.read_some(&mut self.buffer).await?;
            };
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).to_string();
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| ConnError::Protocol(HttpError::BadChunk.to_string()))?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                // Trailers are not used by devices; drop the final CRLF if it is there.
                if self.buffer.starts_with(b"\r\n") {
                    self.buffer.drain(..2);
                }
                return Ok(body);
            }
            // Compared before any arithmetic: a hostile size near usize::MAX must not wrap.
            if size > MAX_BODY - body.len() {
                *reusable = false;
                return Ok(body);
            }
            while self.buffer.len() < size + 2 {
                self.conversation.read_some(&mut self.buffer).await?;
            }
            body.extend_from_slice(&self.buffer[..size]);
            self.buffer.drain(..size + 2);
        }
    }

    /// Ends the conversation.
    pub async fn close(self) {
        self.conversation.close().await
    }
}

/// How a page asks for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `WWW-Authenticate: Basic`.
    Basic {
        /// The realm.
        realm: String,
    },
    /// `WWW-Authenticate: Digest`.
    Digest(DigestChallenge),
}

/// The parameters of a Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestChallenge {
    /// realm
    pub realm: String,
    /// nonce
    pub nonce: String,
    /// opaque, echoed back
    pub opaque: Option<String>,
    /// Whether qop=auth is offered (else RFC 2069 style).
    pub qop_auth: bool,
    /// SHA-256 instead of MD5.
    pub sha256: bool,
}

/// Reads the challenges of a 401 response; Digest is preferred when both are offered.
pub fn challenge(head: &Head) -> Option<Challenge> {
    let mut basic = None;
    for (name, value) in &head.headers {
        if name != "www-authenticate" {
            continue;
        }
        let (scheme, rest) = value.split_once(' ').unwrap_or((value.as_str(), ""));
        let params = auth_params(rest);
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        match scheme.to_ascii_lowercase().as_str() {
            "digest" => {
                let algorithm = get("algorithm").unwrap_or_default().to_ascii_uppercase();
                if !(algorithm.is_empty() || algorithm == "MD5" || algorithm == "SHA-256") {
                    continue;
                }
                // A Digest challenge without a nonce is unusable; a Basic one beside it still is.
                let Some(nonce) = get("nonce") else { continue };
                return Some(Challenge::Digest(DigestChallenge {
                    realm: get("realm").unwrap_or_default(),
                    nonce,
                    opaque: get("opaque"),
                    qop_auth: get("qop").is_some_and(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"))),
                    sha256: algorithm == "SHA-256",
                }));
            }
            "basic" => basic = Some(Challenge::Basic { realm: get("realm").unwrap_or_default() }),
            _ => {}
        }
    }
    basic
}

pub use botscope_net::wire::http::auth_params;

fn hex_digest(sha256: bool, input: &str) -> String {
    if sha256 {
        let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    } else {
        Md5::digest(input.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The Authorization header value for a Digest challenge.
pub fn digest_authorization(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let ha1 = hex_digest(challenge.sha256, &format!("{username}:{}:{password}", challenge.realm));
    let ha2 = hex_digest(challenge.sha256, &format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = if challenge.qop_auth {
        hex_digest(challenge.sha256, &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce))
    } else {
        hex_digest(challenge.sha256, &format!("{ha1}:{}:{ha2}", challenge.nonce))
    };
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\"",
        quote(username),
        quote(&challenge.realm),
        quote(&challenge.nonce)
    );
    if challenge.sha256 {
        value.push_str(", algorithm=SHA-256");
    } else {
        value.push_str(", algorithm=MD5");
    }
    if challenge.qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(opaque) = &challenge.opaque {
        value.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    value
}

fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The Authorization header value for Basic.
pub fn basic_authorization(username: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")))
}

/// Tries the dictionary against a Basic or Digest challenge on `/`. Success is a 2xx or 3xx
/// answer to an authenticated request (an authenticated page, not another 401).
pub async fn login<S: Stream, F, Fut>(
    context: &LoginContext<'_>,
    first: Client<S>,
    first_challenge: Challenge,
    reconnect: F,
) -> LoginOutcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Client<S>, ConnError>>,
{
    let mut client = Some(first);
    // Whether `client` has already carried a request: a reused connection that fails before
    // answering (idle close, deadline, byte budget) has not judged the pair.
    let mut reused = true;
    let mut retried = false;
    let mut current = first_challenge;
    let mut nc = 0u32;
    let mut tried = 0;
    let mut errors_in_a_row = 0;
    let credentials = context.credentials();
    let mut index = 0;
    while index < credentials.len() {
        let credential = &credentials[index];
        if !context.take_attempt() {
            return LoginOutcome::BudgetExhausted { tried };
        }
        tried += 1;
        let mut open = match client.take() {
            Some(open) => open,
            None => match reconnect().await {
                Ok(open) => {
                    reused = false;
                    open
                }
                Err(error) => return LoginOutcome::Aborted { tried, error },
            },
        };
        let authorization = match &current {
            Challenge::Basic { .. } => basic_authorization(&credential.username, &credential.password),
            Challenge::Digest(digest) => {
                nc += 1;
                let cnonce = format!("{:016x}", context.token());
                digest_authorization(digest, &credential.username, &credential.password, "GET", "/", nc, &cnonce)
            }
        };
        match open.get("/", Some(&authorization)).await {
            Ok(response) if (200..400).contains(&response.head.status) => {
                context.audit(credential.id, Attempt::Success).await;
                open.close().await;
                return LoginOutcome::Found { credential_id: credential.id, tried };
            }
            Ok(response) => {
                context.audit(credential.id, Attempt::Failure).await;
                errors_in_a_row = 0;
                retried = false;
                index += 1;
                if response.head.status == 401
                    && let Some(Challenge::Digest(next)) = challenge(&response.head)
                {
                    if next.nonce != digest_nonce(&current) {
                        nc = 0;
                    }
                    current = Challenge::Digest(next);
                }
                if response.reusable {
                    client = Some(open);
                    reused = true;
                } else {
                    open.close().await;
                }
            }
            Err(_) if reused && !retried => {
                // Try the same pair once more on a fresh connection.
                tried -= 1;
                context.refund_attempt();
                retried = true;
            }
            Err(error) => {
                context.audit(credential.id, Attempt::Error).await;
                errors_in_a_row += 1;
                if errors_in_a_row >= 2 {
                    return LoginOutcome::Aborted { tried, error };
                }
                // No silent loss: the same pair once more, on a fresh connection.
                context.retry_once_then_next(&mut retried, &mut index);
            }
        }
    }
    LoginOutcome::NotFound { tried }
}

fn digest_nonce(challenge: &Challenge) -> &str {
    match challenge {
        Challenge::Digest(digest) => &digest.nonce,
        Challenge::Basic { .. } => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn head_parses_status_headers_and_length() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nServer: SR-300 httpd\r\nWWW-Authenticate: Basic realm=\"SR-300\"\r\nContent-Length: 0\r\n\r\nrest";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 401);
        assert_eq!(head.header("server"), Some("SR-300 httpd"));
        assert_eq!(&raw[used..], b"rest");
        assert_eq!(challenge(&head), Some(Challenge::Basic { realm: "SR-300".into() }));
    }

    #[test]
    fn incomplete_and_foreign_replies() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Ok(None));
        assert_eq!(parse_head(b"SSH-2.0-dropbear\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_head(&[b'H'; MAX_HEAD + 10]), Err(HttpError::NotHttp));
        let long: Vec<u8> =
            b"HTTP/1.1 200 OK\r\nX: ".iter().copied().chain(std::iter::repeat_n(b'a', MAX_HEAD)).collect();
        assert_eq!(parse_head(&long), Err(HttpError::HeadTooLong));
    }

    #[test]
    fn digest_matches_the_rfc_2617_example() {
        // RFC 2617 section 3.5: Mufasa / "Circle Of Life".
        let challenge = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
            sha256: false,
        };
        let value =
            digest_authorization(&challenge, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(value.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{value}");
    }

    #[test]
    fn digest_challenge_parameters_are_read() {
        let (head, _) = parse_head(
            b"HTTP/1.1 401 x\r\nWWW-Authenticate: Digest realm=\"lab, realm\", qop=\"auth,auth-int\", nonce=\"abc\", algorithm=MD5\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        let Some(Challenge::Digest(digest)) = challenge(&head) else { panic!("no digest") };
        assert_eq!(digest.realm, "lab, realm");
        assert_eq!(digest.nonce, "abc");
        assert!(digest.qop_auth && !digest.sha256);
    }

    #[test]
    fn titles_and_password_forms() {
        assert_eq!(html_title(b"<html><TITLE>\n KV-IPC200  Web\n</title>"), Some("KV-IPC200 Web".into()));
        assert_eq!(html_title(b"<title></title>"), None);
        assert_eq!(html_title(b"<title>unterminated"), None);
    }

    #[test]
    fn a_digest_challenge_without_nonce_leaves_basic_usable() {
        let (head, _) = parse_head(
            b"HTTP/1.1 401 x\r\nWWW-Authenticate: Digest realm=\"a\"\r\nWWW-Authenticate: Basic realm=\"b\"\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(challenge(&head), Some(Challenge::Basic { realm: "b".into() }));
    }

    #[test]
    fn basic_encodes_user_and_password() {
        assert_eq!(basic_authorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    proptest! {
        #[test]
        fn chunked_bodies_never_panic_or_exceed_the_cap(sizes in proptest::collection::vec("[0-9a-fA-F]{1,20}", 1..4)) {
            let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n".to_vec();
            for size in &sizes {
                raw.extend_from_slice(format!("{size}\r\n").as_bytes());
                raw.extend_from_slice(&[b'x'; 64]);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (mut server, client) = tokio::io::duplex(1 << 20);
                tokio::io::AsyncWriteExt::write_all(&mut server, &raw).await.unwrap();
                drop(server);
                let limits = crate::conn::Limits { read: std::time::Duration::from_millis(200), ..Default::default() };
                let mut client = Client::new(Conversation::new(client, limits), "t".into());
                if let Ok(response) = client.read_response().await {
                    assert!(response.body.len() <= MAX_BODY);
                }
            });
        }

        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = parse_head(&bytes);
        }

        #[test]
        fn parser_never_panics_on_http_like_input(tail in "[ -~\r\n]{0,600}") {
            let raw = format!("HTTP/1.1 200 OK\r\n{tail}");
            if let Ok(Some((head, used))) = parse_head(raw.as_bytes()) {
                prop_assert!(used <= raw.len());
                prop_assert_eq!(head.status, 200);
            }
            let _ = auth_params(&tail);
            let _ = html_title(tail.as_bytes());
        }
    }
}
