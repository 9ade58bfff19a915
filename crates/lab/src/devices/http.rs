//! A device's web interface: a first page behind Basic or Digest authentication, an HTML login
//! form, or an admin page open to anyone; a `Server` header and a title per model. Also the TR-069
//! (CWMP) connection-request port, which answers every request with a Digest challenge.

use base64::Engine;
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{DeviceState, pause};
use crate::fleet::Credential;

const MAX_HEAD: usize = 8 * 1024;
const MAX_REQUESTS: usize = 1000;

/// Which page family to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The device's web interface.
    Web,
    /// The TR-069 connection-request port.
    Cwmp,
}

/// Serves one connection (plain or TLS).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    state: &DeviceState,
    mut stream: S,
    flavour: Flavour,
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(1024);
    let nonce = format!("{:032x}", u128::from(state.device.seed) << 64 | u128::from(state.connections()));
    for request in 0..MAX_REQUESTS {
        let Some((head, end)) = read_head(&mut stream, &mut buffer).await? else { return Ok(()) };
        buffer.drain(..end);
        if request == 0 {
            pause(&state.device).await;
        }
        let close = head.to_ascii_lowercase().contains("\nconnection: close");
        let response = match flavour {
            Flavour::Cwmp => {
                respond(401, "", Some(format!("Digest realm=\"cwmp\", nonce=\"{nonce}\", qop=\"auth\"")), "", false)
            }
            Flavour::Web => web(state, &head, &nonce),
        };
        stream.write_all(response.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<(String, usize)>> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some((String::from_utf8_lossy(&buffer[..position]).into_owned(), position + 4)));
        }
        if buffer.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn web(state: &DeviceState, head: &str, nonce: &str) -> String {
    let device = &state.device;
    let lab = &device.model.lab;
    let server = device.show(&lab.http_server);
    let title = device.show(&lab.http_title);
    let admin = format!(
        "<html><head><title>{title}</title></head><body><h1>{title}</h1><p>Status: connected</p><p>Firmware: {}</p><a href=\"/settings\">Settings</a></body></html>",
        device.firmware
    );
    if device.credential == Credential::None {
        return respond(200, &server, None, &admin, true);
    }
    let realm = if lab.http_realm.is_empty() { device.model.model.clone() } else { lab.http_realm.clone() };
    match lab.http_auth.as_str() {
        "form" => {
            let form = format!(
                "<html><head><title>{title}</title></head><body><form method=\"post\" action=\"/login\"><input name=\"user\"><input type=\"password\" name=\"pass\"><button>Login</button></form></body></html>"
            );
            respond(200, &server, None, &form, true)
        }
        scheme => {
            let authorization = head.split("\r\n").find_map(|line| {
                line.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.trim().to_string())
            });
            let digest = scheme == "digest";
            if let Some(value) = authorization {
                let ok = if digest {
                    digest_ok(&device.credential, &realm, &value)
                } else {
                    basic_ok(&device.credential, &value)
                };
                if state.login_allowed(1) && ok {
                    return respond(200, &server, None, &admin, true);
                }
                state.login_failed(1);
            }
            let challenge = if digest {
                format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5")
            } else {
                format!("Basic realm=\"{realm}\"")
            };
            let page = format!("<html><head><title>{title}</title></head><body>401 Unauthorized</body></html>");
            respond(401, &server, Some(challenge), &page, true)
        }
    }
}

fn respond(status: u16, server: &str, challenge: Option<String>, body: &str, keep_alive: bool) -> String {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    if !server.is_empty() {
        out.push_str(&format!("Server: {server}\r\n"));
    }
    if let Some(challenge) = challenge {
        out.push_str(&format!("WWW-Authenticate: {challenge}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: text/html\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    ));
    out
}

fn basic_ok(credential: &Credential, value: &str) -> bool {
    let Some(encoded) = value.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let text = String::from_utf8_lossy(&decoded);
    let Some((user, pass)) = text.split_once(':') else { return false };
    credential.accepts(user, pass)
}

fn hex_md5(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_ok(credential: &Credential, realm: &str, value: &str) -> bool {
    let (Credential::Dictionary { username, password, .. } | Credential::Strong { username, password }) = credential
    else {
        return false;
    };
    let Some(rest) = value.strip_prefix("Digest ") else { return false };
    let params = botscope_net::wire::http::auth_params(rest);
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
    if get("username") != username || get("realm") != realm {
        return false;
    }
    let ha1 = hex_md5(&format!("{username}:{realm}:{password}"));
    let ha2 = hex_md5(&format!("GET:{}", get("uri")));
    let expected = if get("qop") == "auth" {
        hex_md5(&format!("{ha1}:{}:{}:{}:auth:{ha2}", get("nonce"), get("nc"), get("cnonce")))
    } else {
        hex_md5(&format!("{ha1}:{}:{ha2}", get("nonce")))
    };
    expected == get("response")
}
