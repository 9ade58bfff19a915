//! The certificate names the survey matches Recog's `x509.subject`/`x509.issuer` fingerprints
//! against must read exactly as OpenSSL's `-nameopt RFC2253` writes them (the form Recog's examples
//! come in). Each case makes a real certificate with the `openssl` command and compares.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::process::Command;

use botscope_survey::x509::certificate_names;

/// A self-signed certificate (DER) with `subject` (OpenSSL's `-subj` syntax, UTF-8, `+` joins a
/// multi-valued RDN), and OpenSSL's own RFC 2253 rendering of that subject.
fn openssl_certificate(subject: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("cert.der");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-utf8", "-multivalue-rdn", "-subj", subject, "-outform", "DER", "-out"])
        .arg(&der)
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .output()
        .expect("the openssl command (Debian package openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let printed = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&der)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let line = String::from_utf8(printed.stdout).unwrap();
    let rendered = line.trim_end_matches('\n').strip_prefix("subject=").unwrap().to_string();
    (std::fs::read(der).unwrap(), rendered)
}

#[test]
fn subjects_read_exactly_as_openssl_writes_them() {
    let subjects = [
        "/C=JP/ST=Tokyo/O=Example Camera Works, Ltd./OU=Network Camera/CN=IPC-EX2041",
        // Non-ASCII text, a multi-valued RDN, an e-mail address.
        "/C=JP/ST=東京都/O=カメラ工房/OU=映像+OU=R&D/CN=cam-01/emailAddress=ops@example.org",
        // Characters RFC 4514 escapes, a leading '#'.
        "/O=a\"b;c<d>e\\, f/CN=#not-hex",
        // Domain components and a user id (IA5String and UTF8String values).
        "/DC=example/DC=org/UID=u1/CN=plain",
        "/serialNumber=0123/title=Camera/GN=Taro/SN=Yamada/pseudonym=tyama/CN=x",
    ];
    for subject in subjects {
        let (der, openssl) = openssl_certificate(subject);
        let ours = certificate_names(&der).unwrap();
        assert_eq!(ours.subject, openssl, "subject {subject:?}");
        // Self-signed: the issuer is the same name.
        assert_eq!(ours.issuer, openssl, "issuer of {subject:?}");
    }
}
