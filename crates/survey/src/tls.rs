//! TLS for HTTPS devices. Devices present self-signed, expired or mismatched certificates as a
//! rule, so the survey accepts any certificate: it authenticates nothing of its own over TLS and
//! only needs the encrypted channel to reach the login page.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::conn::ConnError;

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // The handshake signature is not checked either: it would only prove the device holds the key
    // of a certificate nothing trusts, and checking it means parsing the certificate as a WebPKI
    // one, which refuses the X.509 v1 and odd-keyed certificates old cameras and routers still
    // present (the handshake failed with `UnsupportedCertVersion` on such a device).
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connector that accepts any server certificate.
pub fn connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Runs the TLS handshake over a connected socket.
pub async fn handshake(
    connector: &TlsConnector,
    stream: TcpStream,
    timeout: std::time::Duration,
) -> Result<TlsStream<TcpStream>, ConnError> {
    let ip = stream.peer_addr().map_err(ConnError::Io)?.ip();
    let name = ServerName::IpAddress(ip.into());
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(ConnError::Timeout),
        Ok(Err(error)) => Err(ConnError::Handshake(error.to_string())),
        Ok(Ok(tls)) => Ok(tls),
    }
}
