//! A telnet login dialogue as IoT devices run it: option negotiation, banner, login and password
//! prompts, "Login incorrect", three tries per connection, and a small shell that knows `echo` and
//! `exit` (all the survey ever sends).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{DeviceState, pause};
use crate::fleet::Credential;

use botscope_net::wire::telnet::{DO, IAC, SB, SE, WILL};

const MAX_LINE: usize = 256;

/// Serves one connection.
pub async fn serve(state: &DeviceState, mut stream: TcpStream) -> std::io::Result<()> {
    let device = &state.device;
    let lab = &device.model.lab;
    // What BusyBox telnetd sends, in its order: DO ECHO, DO NAWS, WILL ECHO, WILL SGA.
    stream.write_all(&[IAC, DO, 1, IAC, DO, 31, IAC, WILL, 1, IAC, WILL, 3]).await?;
    // Like a telnetd that starts `login` once the client has answered the options (some clients
    // throw away text that arrives with the negotiation), wait briefly for that answer.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), stream.readable()).await;
    let mut input = LineReader::default();
    pause(device).await;
    let banner = device.show(&lab.telnet_banner);
    let mut greeting = format!("\r\n{banner}\r\n");
    if device.credential == Credential::None {
        greeting.push_str(&device.show(&lab.shell_prompt));
        stream.write_all(greeting.as_bytes()).await?;
        return shell(state, &mut stream, &mut input).await;
    }
    greeting.push_str(&lab.telnet_login_prompt);
    stream.write_all(greeting.as_bytes()).await?;
    for _try in 0..3 {
        let Some(username) = input.line(&mut stream, true).await? else { return Ok(()) };
        stream.write_all(lab.telnet_password_prompt.as_bytes()).await?;
        let Some(password) = input.line(&mut stream, false).await? else { return Ok(()) };
        if state.login_allowed(0) && device.credential.accepts(&username, &password) {
            stream.write_all(device.show(&lab.shell_prompt).as_bytes()).await?;
            return shell(state, &mut stream, &mut input).await;
        }
        state.login_failed(0);
        stream.write_all(format!("Login incorrect\r\n{}", lab.telnet_login_prompt).as_bytes()).await?;
    }
    Ok(())
}

async fn shell(state: &DeviceState, stream: &mut TcpStream, input: &mut LineReader) -> std::io::Result<()> {
    let prompt = state.device.show(&state.device.model.lab.shell_prompt);
    for _ in 0..32 {
        let Some(line) = input.line(stream, true).await? else { return Ok(()) };
        let mut reply = String::new();
        let command = line.trim();
        if command == "exit" {
            stream.write_all(reply.as_bytes()).await?;
            return Ok(());
        }
        if let Some(arguments) = command.strip_prefix("echo ") {
            reply.push_str(&arguments.replace(['\'', '"'], ""));
            reply.push_str("\r\n");
        } else if !command.is_empty() {
            let name = command.split_whitespace().next().unwrap_or("");
            reply.push_str(&format!("sh: {name}: not found\r\n"));
        }
        reply.push_str(&prompt);
        stream.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// Reads input lines, dropping telnet negotiation, echoing typed characters as they arrive (the
/// server does the echo in telnet; clients that type one character at a time wait for it) unless
/// a password is being typed, and answering the end of a line with CR LF. A line longer than
/// [`MAX_LINE`] ends the connection (what a device's fixed buffer would do).
#[derive(Default)]
struct LineReader {
    pending: Vec<u8>,
    /// How much of `pending` has been echoed already.
    echoed: usize,
    state: u8,
}

impl LineReader {
    async fn line(&mut self, stream: &mut TcpStream, echo: bool) -> std::io::Result<Option<String>> {
        let mut buf = [0u8; 512];
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
                if echo {
                    stream.write_all(&self.pending[self.echoed.min(end)..end]).await?;
                }
                self.echoed = 0;
                stream.write_all(b"\r\n").await?;
                let line: Vec<u8> = self.pending.drain(..end).collect();
                // Drop the terminator and a following LF or NUL.
                self.pending.remove(0);
                if matches!(self.pending.first(), Some(b'\n') | Some(0)) {
                    self.pending.remove(0);
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            if echo && self.echoed < self.pending.len() {
                stream.write_all(&self.pending[self.echoed..]).await?;
                self.echoed = self.pending.len();
            }
            if self.pending.len() > MAX_LINE {
                return Ok(None);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            for &byte in &buf[..n] {
                // 0: text, 1: after IAC, 2: option byte, 3: in SB, 4: IAC in SB
                self.state = match (self.state, byte) {
                    (0, IAC) => 1,
                    (0, b) => {
                        if b != 0 || self.pending.last() != Some(&b'\r') {
                            self.pending.push(b);
                        }
                        0
                    }
                    (1, IAC) => {
                        self.pending.push(IAC);
                        0
                    }
                    (1, SB) => 3,
                    (1, 251..=254) => 2,
                    (1, _) | (2, _) => 0,
                    (3, IAC) => 4,
                    (3, _) => 3,
                    (4, SE) => 0,
                    (4, _) => 3,
                    _ => 0,
                };
            }
        }
    }
}
