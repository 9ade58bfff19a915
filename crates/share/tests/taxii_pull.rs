//! A partner's TAXII server is not trusted: one that streams a reply without end, or answers
//! something that is not TAXII, costs a bounded read and a clear error.

use botscope_share::taxii::{PullConfig, PullError, pull};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on loopback that answers every request with `head` and then `body` repeated until the
/// client hangs up (at most 256 MiB, so the test ends by itself whatever the client does).
async fn server(head: &'static str, body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut sent = 0usize;
                while sent < 256 << 20 {
                    if socket.write_all(body).await.is_err() {
                        return;
                    }
                    sent += body.len();
                    if head.contains("Content-Length") {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}/taxii2/")
}

#[tokio::test]
async fn an_endless_reply_stops_at_the_page_cap() {
    let url =
        server("HTTP/1.1 200 OK\r\nContent-Type: application/taxii+json;version=2.1\r\n\r\n", &[b'['; 65536]).await;
    let mut config = PullConfig::new(&url, "c");
    config.max_page_bytes = 1 << 20;
    match pull(&config).await {
        Err(PullError::Http { reason, .. }) => assert!(reason.contains("cap of 1 MiB"), "{reason}"),
        other => panic!("expected the cap to stop the read: {other:?}"),
    }
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_named_as_such() {
    let url = server("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", b"<html>hi!").await;
    match pull(&PullConfig::new(&url, "c")).await {
        Err(PullError::NotTaxii { reason, .. }) => assert!(reason.contains("not JSON"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

const SAME_CURSOR: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/taxii+json;version=2.1\r\nContent-Length: 44\r\n\r\n";
const SAME_CURSOR_BODY: &[u8] = br#"{"more":true,"next":"again","objects":[{}]} "#;

#[tokio::test]
async fn a_cursor_given_twice_ends_the_pull() {
    let url = server(SAME_CURSOR, SAME_CURSOR_BODY).await;
    match pull(&PullConfig::new(&url, "c")).await {
        Err(PullError::EndlessPages(pages)) => assert_eq!(pages, 2),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_pull_stops_at_its_total_bound() {
    let url = server(SAME_CURSOR, SAME_CURSOR_BODY).await;
    let mut config = PullConfig::new(&url, "c");
    config.max_total_bytes = 40;
    match pull(&config).await {
        Err(PullError::TooMuch(bound)) => assert_eq!(bound, 40),
        other => panic!("{other:?}"),
    }
}
