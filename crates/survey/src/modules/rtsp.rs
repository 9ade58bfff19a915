//! RTSP (port 554, IP cameras, DVRs and NVRs): one `OPTIONS` request, whose reply names the
//! streaming server in its `Server` header. No stream is described or played, and no login is
//! tried: RTSP credentials open the camera's picture, which a survey must never look at.
//!
//! Replies use HTTP's head syntax, so they are read by [`super::http::parse_message_head`]
//! (fuzzed with the HTTP heads in `fuzz/fuzz_targets/http_response.rs`).

use super::http::{Head, HttpError, parse_message_head};

/// The request: `OPTIONS` on the server's root, the one method every RTSP server must answer
/// (RFC 2326 10.1, RFC 7826 13.1).
pub fn options_request(authority: &str) -> Vec<u8> {
    format!("OPTIONS rtsp://{authority}/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: botscope-survey\r\n\r\n").into_bytes()
}

/// The reply head at the start of `bytes`: `Ok(None)` while incomplete.
pub fn parse_reply(bytes: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    parse_message_head(bytes, "RTSP/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_reply_names_its_server() {
        let reply = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: GStreamer RTSP server\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n";
        let (head, used) = parse_reply(reply).unwrap().unwrap();
        assert_eq!(used, reply.len());
        assert_eq!(head.version, "RTSP/1.0");
        assert_eq!(head.header("server"), Some("GStreamer RTSP server"));
    }

    #[test]
    fn an_http_reply_is_not_rtsp() {
        assert_eq!(parse_reply(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err(), HttpError::NotHttp);
        assert_eq!(parse_reply(b"RTS").unwrap(), None);
    }
}
