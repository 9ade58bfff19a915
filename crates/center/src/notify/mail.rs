//! Delivery by e-mail: one message per ISP, the period's report files attached, sent over SMTP to
//! the ISP's registered contact.
//!
//! botscope speaks plain SMTP to one relay (`smtp://HOST[:PORT]`, normally the local MTA, which
//! then delivers with TLS); it does not try to be a mail server.

use std::collections::BTreeMap;

use botscope_model::{Isp, Language};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Period, ReportFile};
use crate::CenterError;

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://HOST[:PORT]` (port 25 when absent).
    pub relay: String,
    /// The sender, e.g. `botscope centre <centre@example.jp>`.
    pub from: String,
}

fn relay_address(relay: &str) -> Result<(String, u16), CenterError> {
    let rest = relay
        .strip_prefix("smtp://")
        .ok_or_else(|| CenterError::Invalid(format!("--smtp {relay}: expected smtp://HOST[:PORT]")))?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let port = port.parse().map_err(|_| CenterError::Invalid(format!("--smtp {relay}: bad port")))?;
            Ok((host.trim_matches(['[', ']']).to_string(), port))
        }
        _ if !rest.is_empty() => Ok((rest.to_string(), 25)),
        _ => Err(CenterError::Invalid(format!("--smtp {relay}: expected smtp://HOST[:PORT]"))),
    }
}

/// Sends each ISP its files; returns the ISPs mailed. An ISP whose contact is not a mail address
/// is an error naming it (nothing is sent to anyone before all contacts are checked).
pub async fn send_reports(
    config: &MailConfig,
    period: Period,
    files: &[ReportFile],
    isps: &[Isp],
) -> Result<Vec<String>, CenterError> {
    let from: Mailbox =
        config.from.parse().map_err(|e| CenterError::Invalid(format!("--mail-from {}: {e}", config.from)))?;
    let mut by_isp: BTreeMap<&str, Vec<&ReportFile>> = BTreeMap::new();
    for file in files {
        by_isp.entry(file.isp.as_str()).or_default().push(file);
    }
    let mut messages = Vec::new();
    for (handle, files) in by_isp {
        let isp = isps
            .iter()
            .find(|i| i.handle == handle)
            .ok_or_else(|| CenterError::Invalid(format!("ISP {handle} is not in the registry")))?;
        let to: Mailbox = isp.contact.parse().map_err(|e| {
            CenterError::Invalid(format!("ISP {handle}: contact {:?} is not a mail address: {e}", isp.contact))
        })?;
        let rows: usize = files.iter().map(|f| f.rows).sum();
        let (subject, text) = match isp.language {
            Language::Ja => (
                format!("[botscope] {} の通知 ({} 件)", period.label(), rows),
                format!(
                    "{} 様\n\n{} の期間について、貴社ネットワーク内で感染または脆弱と判定された機器 {} 件の一覧を添付します。\n\
                     各行の guide 列は、利用者向けの対処手順の識別子です。対応結果は API (POST /api/v1/isp/notifications/ID/status) でお知らせください。\n",
                    isp.name,
                    period.label(),
                    rows
                ),
            ),
            Language::En => (
                format!("[botscope] notifications for {} ({} rows)", period.label(), rows),
                format!(
                    "Dear {},\n\nAttached are the {} devices in your network found infected or vulnerable in {}.\n\
                     The guide column names the remediation guide for the subscriber. Please report outcomes through the API \
                     (POST /api/v1/isp/notifications/ID/status).\n",
                    isp.name,
                    rows,
                    period.label()
                ),
            ),
        };
        let mut body = MultiPart::mixed().singlepart(SinglePart::plain(text));
        for file in files {
            let content = std::fs::read(&file.path)
                .map_err(|source| CenterError::Io { path: file.path.display().to_string(), source })?;
            let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let kind = if name.ends_with(".csv") { "text/csv" } else { "application/x-ndjson" };
            let content_type = ContentType::parse(kind).map_err(|e| CenterError::Invalid(e.to_string()))?;
            body = body.singlepart(Attachment::new(name).body(content, content_type));
        }
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(body)
            .map_err(|e| CenterError::Invalid(format!("ISP {handle}: cannot build the message: {e}")))?;
        messages.push((handle.to_string(), message));
    }
    let (host, port) = relay_address(&config.relay)?;
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port).build();
    let mut sent = Vec::new();
    for (handle, message) in messages {
        transport
            .send(message)
            .await
            .map_err(|e| CenterError::Invalid(format!("sending to ISP {handle} through {}: {e}", config.relay)))?;
        sent.push(handle);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_read_with_a_default_port() {
        assert_eq!(relay_address("smtp://127.0.0.1:2525").unwrap(), ("127.0.0.1".into(), 2525));
        assert_eq!(relay_address("smtp://mail.example.jp").unwrap(), ("mail.example.jp".into(), 25));
        assert_eq!(relay_address("smtp://[::1]:25").unwrap(), ("::1".into(), 25));
        assert!(relay_address("http://x").is_err());
        assert!(relay_address("smtp://").is_err());
        assert!(relay_address("smtp://host:port").is_err());
    }
}
