//! Reading an HTTP response body within a size cap: a server (or something in between) that
//! sends without end costs at most the cap, never the machine's memory.

use crate::DeliverError;

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
