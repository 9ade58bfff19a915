//! Reading an HTTP response body within a size cap: a server (or something in between) that
//! sends without end costs at most the cap, never the machine's memory.

use crate::error::DeliverError;

/// Reads `response`'s body, failing with a clear error once it passes `max` bytes (the
/// Content-Length, when the server gives one, is checked before anything is read).
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, DeliverError> {
    if let Some(length) = response.content_length()
        && length > max as u64
    {
        return Err(DeliverError::TooLarge(format!(
            "the response is {length} bytes, more than the cap of {}",
            size(max)
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| DeliverError::Http(e.to_string()))? {
        if body.len() + chunk.len() > max {
            return Err(DeliverError::TooLarge(format!(
                "the response is larger than the cap of {}; stopped reading it",
                size(max)
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// How long connecting to the centre may take when fetching from it.
const FETCH_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// GETs `url` from the centre with `token`, within `timeout` in all (connecting, asking, reading)
/// and reading at most `max_bytes` of the answer; a status other than success is an error that
/// quotes the start of the body.
pub async fn fetch_text(
    url: &str,
    token: &str,
    timeout: std::time::Duration,
    max_bytes: usize,
) -> Result<String, DeliverError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(FETCH_CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .map_err(|e| DeliverError::Http(format!("cannot make the HTTP client: {e}")))?;
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| DeliverError::Http(format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let body = read_capped(response, max_bytes).await.map_err(|e| match e {
        DeliverError::Http(e) => DeliverError::Http(format!("reading {url} (at most {timeout:?}): {e}")),
        other => other,
    })?;
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Err(DeliverError::Answered {
            url: url.to_string(),
            status: status.as_u16(),
            body: text.chars().take(500).collect(),
        });
    }
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use super::*;

    /// A centre on loopback that answers one request: `head`, then `body` repeated until the
    /// client hangs up, or, with `stall`, `body` once and then silence while the connection stays
    /// open. Returns its URL.
    fn centre(head: &'static str, body: &'static [u8], stall: bool) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = stream.write_all(head.as_bytes());
            if stall {
                let _ = stream.write_all(body);
                std::thread::sleep(Duration::from_secs(20));
                return;
            }
            while stream.write_all(body).is_ok() {}
        });
        url
    }

    const CHUNK: &[u8] = b"10\r\n{\"kind\":\"x\"}\n...\r\n";
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";

    #[tokio::test]
    async fn regression_a_fetch_stops_past_its_size_cap() {
        let url = centre(CHUNKED, CHUNK, false);
        let error = fetch_text(&url, "token", Duration::from_secs(60), 1 << 20).await.unwrap_err();
        assert!(error.to_string().contains("larger than the cap of 1 MiB"), "{error}");
        // A declared length over the cap is refused before the body is read.
        let url = centre("HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\n\r\n", b"x", false);
        let error = fetch_text(&url, "token", Duration::from_secs(60), 1 << 20).await.unwrap_err();
        assert!(error.to_string().contains("10737418240 bytes, more than the cap"), "{error}");
    }

    #[tokio::test]
    async fn regression_a_fetch_gives_up_after_its_total_timeout() {
        let url = centre(CHUNKED, CHUNK, true);
        let started = Instant::now();
        let error = fetch_text(&url, "token", Duration::from_millis(500), 1 << 20).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(error.to_string().contains("reading"), "{error}");
    }

    #[tokio::test]
    async fn a_fetch_reads_an_answer_within_its_limits_and_reports_a_refusal() {
        let url = centre("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n", b"ok\n", true);
        assert_eq!(fetch_text(&url, "token", Duration::from_secs(10), 1 << 20).await.unwrap(), "ok\n");
        let url = centre("HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\n", b"denied", true);
        let error = fetch_text(&url, "token", Duration::from_secs(10), 1 << 20).await.unwrap_err();
        assert!(error.to_string().contains("403") && error.to_string().contains("denied"), "{error}");
    }
}
