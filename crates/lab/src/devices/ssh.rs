//! SSH with password authentication (russh's server), announcing the model's version string.

use std::sync::Arc;

use russh::server::{self, Auth};
use russh::{MethodKind, MethodSet, SshId};
use tokio::net::TcpStream;

use super::DeviceState;

/// The server configuration for one model (its version string) with the fleet's host key.
pub fn config(version: &str, key: &russh::keys::PrivateKey) -> Arc<server::Config> {
    let version = if version.starts_with("SSH-2.0-") { version.to_string() } else { "SSH-2.0-dropbear".to_string() };
    Arc::new(server::Config {
        server_id: SshId::Standard(version.into()),
        methods: MethodSet::from(&[MethodKind::Password][..]),
        auth_rejection_time: std::time::Duration::from_millis(20),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        keys: vec![key.clone()],
        max_auth_attempts: 6,
        inactivity_timeout: Some(std::time::Duration::from_secs(60)),
        nodelay: true,
        ..server::Config::default()
    })
}

struct Handler {
    state: Arc<DeviceState>,
}

impl server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.state.login_allowed(2) && self.state.device.credential.accepts(user, password) {
            Ok(Auth::Accept)
        } else {
            self.state.login_failed(2);
            // Name password as still possible: an empty list tells the client to give up.
            Ok(Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(&[MethodKind::Password][..])),
                partial_success: false,
            })
        }
    }
}

/// Serves one connection until the client leaves.
pub async fn serve(
    state: Arc<DeviceState>,
    config: Arc<server::Config>,
    stream: TcpStream,
) -> Result<(), russh::Error> {
    let session = server::run_stream(config, stream, Handler { state }).await?;
    session.await
}
