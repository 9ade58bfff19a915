//! SSH: the version line, and password authentication through russh.
//!
//! Old devices run Dropbear builds from the early 2010s, so the client offers the legacy key
//! exchanges, ciphers, MACs and host-key algorithms after the modern ones. Success is the server's
//! SSH_MSG_USERAUTH_SUCCESS; no channel is ever opened, so nothing runs on the device.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{MethodKind, Preferred, cipher, kex, mac};

use crate::conn::{ConnError, Conversation, Rewind, Stream};
use crate::login::{Attempt, LoginContext, LoginOutcome};

/// Longest version line (RFC 4253 allows 255 bytes) plus the lines some servers print before it.
const MAX_PREAMBLE: usize = 8 * 1024;

/// Reads the server's version line (`SSH-2.0-...`), skipping any lines before it.
/// Returns the line and every byte read (to be replayed to the SSH library).
pub async fn read_version<S: Stream>(conversation: &mut Conversation<S>) -> Result<(String, Vec<u8>), ConnError> {
    let mut read = Vec::with_capacity(256);
    loop {
        if let Some(line) = version_line(&read)? {
            return Ok((line, read));
        }
        if read.len() > MAX_PREAMBLE {
            return Err(ConnError::Protocol("no SSH version line".into()));
        }
        conversation.read_some(&mut read).await?;
    }
}

/// Finds the `SSH-` line in what was read so far. `Ok(None)`: not yet.
pub fn version_line(read: &[u8]) -> Result<Option<String>, ConnError> {
    let mut start = 0;
    while let Some(end) = read[start..].iter().position(|b| *b == b'\n') {
        let line = &read[start..start + end];
        if line.starts_with(b"SSH-") {
            let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
            return Ok(Some(text));
        }
        start += end + 1;
    }
    // A first line that can no longer become a version line and is not text is not SSH.
    if start == 0 && read.len() >= 4 && !read.starts_with(b"SSH-") && read.iter().take(64).any(|b| *b == 0) {
        return Err(ConnError::Protocol("not SSH".into()));
    }
    Ok(None)
}

struct AcceptAnyHostKey;

impl client::Handler for AcceptAnyHostKey {
    type Error = russh::Error;

    // The survey checks passwords, not host identity; it never sends anything secret of its own.
    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The client configuration: modern algorithms first, then what old Dropbear builds speak.
pub fn client_config(timeout: Duration) -> Arc<client::Config> {
    let preferred = Preferred {
        kex: Cow::Owned(vec![
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::ECDH_SHA2_NISTP256,
            kex::DH_G14_SHA256,
            kex::DH_GEX_SHA256,
            kex::DH_G14_SHA1,
            kex::DH_GEX_SHA1,
            kex::DH_G1_SHA1,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
            Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
            Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
            Algorithm::Rsa { hash: None },
            Algorithm::Dsa,
        ]),
        cipher: Cow::Owned(vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_128_CTR,
            cipher::AES_256_CTR,
            cipher::AES_128_CBC,
            cipher::AES_256_CBC,
        ]),
        mac: Cow::Owned(vec![mac::HMAC_SHA256_ETM, mac::HMAC_SHA256, mac::HMAC_SHA512, mac::HMAC_SHA1]),
        ..Preferred::default()
    };
    Arc::new(client::Config {
        preferred,
        inactivity_timeout: Some(timeout),
        nodelay: true,
        client_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-botscope_survey")),
        ..client::Config::default()
    })
}

/// Whether a failed attempt's reply still allows passwords.
fn password_allowed(result: &client::AuthResult) -> bool {
    match result {
        client::AuthResult::Success => true,
        // An empty list says nothing (some servers send none); only a list without password rules it out.
        client::AuthResult::Failure { remaining_methods, .. } => {
            remaining_methods.is_empty() || remaining_methods.contains(&MethodKind::Password)
        }
    }
}

/// Tries the dictionary by password authentication. `first` is a conversation whose version line
/// has been read (`preamble` holds the bytes read).
pub async fn login<S: Stream + 'static, F, Fut>(
    context: &LoginContext<'_>,
    first: (Conversation<S>, Vec<u8>),
    timeout: Duration,
    reconnect: F,
) -> LoginOutcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(Conversation<S>, Vec<u8>), ConnError>>,
{
    let config = client_config(timeout);
    let mut pending = Some(first);
    let mut handle: Option<client::Handle<AcceptAnyHostKey>> = None;
    let mut tried = 0;
    let mut errors_in_a_row = 0;
    let mut index = 0;
    let mut user_on_connection: Option<&str> = None;
    let mut retried = false;
    let credentials = context.credentials();
    while index < credentials.len() {
        let credential = &credentials[index];
        // SSH servers refuse a change of user name on one connection (Dropbear disconnects,
        // OpenSSH too), and hang up after their own try limit: start afresh in both cases.
        let new_user = user_on_connection.is_some_and(|user| user != credential.username);
        if (new_user || handle.as_ref().is_some_and(|h| h.is_closed()))
            && let Some(old) = handle.take()
        {
            let _ = old.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        }
        if handle.is_none() {
            user_on_connection = None;
            let (conversation, preamble) = match pending.take() {
                Some(first) => first,
                None => match reconnect().await {
                    Ok(next) => next,
                    Err(error) => return LoginOutcome::Aborted { tried, error },
                },
            };
            let stream = Rewind::new(preamble, conversation.into_inner());
            let connecting = client::connect_stream(config.clone(), stream, AcceptAnyHostKey);
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(connected)) => handle = Some(connected),
                Ok(Err(error)) => {
                    errors_in_a_row += 1;
                    if errors_in_a_row >= 2 {
                        return LoginOutcome::Aborted { tried, error: ConnError::Handshake(error.to_string()) };
                    }
                    continue;
                }
                Err(_) => return LoginOutcome::Aborted { tried, error: ConnError::Timeout },
            }
        }
        let session = handle.as_mut().expect("connected above");
        if !context.take_attempt() {
            return LoginOutcome::BudgetExhausted { tried };
        }
        tried += 1;
        user_on_connection = Some(&credential.username);
        let auth =
            tokio::time::timeout(timeout, session.authenticate_password(&credential.username, &credential.password))
                .await;
        match auth {
            Ok(Ok(result)) if result.success() => {
                context.audit(credential.id, Attempt::Success).await;
                let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
                return LoginOutcome::Found { credential_id: credential.id, tried };
            }
            Ok(Ok(client::AuthResult::Failure { remaining_methods, .. }))
                if session.is_closed() && remaining_methods.is_empty() && !retried =>
            {
                // The connection ended with no real answer (the library reports a failure with
                // no methods): try this pair once more on a fresh connection.
                handle = None;
                tried -= 1;
                context.refund_attempt();
                retried = true;
            }
            Ok(Ok(result)) => {
                context.audit(credential.id, Attempt::Failure).await;
                errors_in_a_row = 0;
                retried = false;
                index += 1;
                if !password_allowed(&result) {
                    // The server takes no passwords at all (keys only): no pair was really judged.
                    if tried == 1 {
                        context.refund_attempt();
                        return LoginOutcome::NotFound { tried: 0 };
                    }
                    return LoginOutcome::NotFound { tried };
                }
            }
            Ok(Err(_)) => {
                // The server hung up (too many tries on one connection): reconnect, same pair again.
                handle = None;
                tried -= 1;
                context.refund_attempt();
                errors_in_a_row += 1;
                if errors_in_a_row >= 3 {
                    return LoginOutcome::Aborted { tried, error: ConnError::Closed };
                }
            }
            Err(_) => {
                context.audit(credential.id, Attempt::Error).await;
                if retried {
                    return LoginOutcome::Aborted { tried, error: ConnError::Timeout };
                }
                // No silent loss: the same pair once more, on a fresh connection.
                handle = None;
                retried = true;
                context.retry();
            }
        }
    }
    if let Some(session) = handle {
        let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
    LoginOutcome::NotFound { tried }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_after_a_preamble() {
        assert_eq!(version_line(b"SSH-2.0-dropbear_2014.63\r\n").unwrap().as_deref(), Some("SSH-2.0-dropbear_2014.63"));
        assert_eq!(version_line(b"hello\r\nSSH-2.0-x\r\n").unwrap().as_deref(), Some("SSH-2.0-x"));
        assert_eq!(version_line(b"SSH-2.0-partial").unwrap(), None);
        assert!(version_line(b"\x00\x01\x02\x03garbage").is_err());
    }
}
