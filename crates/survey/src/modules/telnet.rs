//! Telnet: option negotiation (RFC 854/855), the terminal side of a login (control sequences
//! removed, cursor position and device attribute queries answered), prompt recognition, and the
//! login dialogue.
//!
//! The decoder, the terminal filter and the prompt classifier are pure functions over bytes
//! (fuzzed in `fuzz/fuzz_targets/telnet_dialogue.rs`); the async part only moves bytes. Success
//! is never inferred from a prompt alone: after the password, whatever the device shows that is
//! neither a login prompt nor a failure text, the survey sends `echo A''B` and needs the shell's
//! output `AB` (which the terminal's echo of the command line cannot contain). A login the
//! device accepted that never echoes is `unconfirmed`: audited and counted, not a finding.

use crate::conn::{ConnError, Conversation, Stream};
use crate::login::{Attempt, LoginContext, LoginOutcome};

pub use botscope_net::wire::telnet::{DO, DONT, IAC, NOP, SB, SE, WILL, WONT};
const OPT_ECHO: u8 = 1;
const OPT_SGA: u8 = 3;

/// More negotiation commands than this with no text in between means the peer is stalling.
pub const MAX_NEGOTIATIONS_WITHOUT_TEXT: u32 = 512;
/// Longest sub-negotiation accepted.
const MAX_SUBNEGOTIATION: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Option(u8),
    Sub,
    SubIac,
    CarriageReturn,
}

/// Splits a telnet byte stream into text and negotiation, and answers the negotiation: it agrees
/// to the server echoing and suppressing go-ahead (what every login dialogue uses) and refuses
/// everything else, answering each option once so two stubborn peers cannot loop.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    answered: [u8; 256],
    sub_len: usize,
    negotiations_since_text: u32,
}

/// What one call to [`Decoder::feed`] produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Text bytes (negotiation removed, CR NUL folded to CR, NUL dropped).
    pub text: Vec<u8>,
    /// Bytes to send back.
    pub reply: Vec<u8>,
}

/// The peer broke the protocol in a way that ends the conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// Negotiation without end.
    #[error("endless option negotiation ({0} commands without text)")]
    Endless(u32),
    /// A sub-negotiation longer than any real option needs.
    #[error("sub-negotiation longer than {MAX_SUBNEGOTIATION} bytes")]
    SubnegotiationTooLong,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { state: State::Data, answered: [0; 256], sub_len: 0, negotiations_since_text: 0 }
    }
}

impl Decoder {
    /// Decodes `input`, appending to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Decoded) -> Result<(), NegotiationError> {
        for &byte in input {
            match self.state {
                State::Data => match byte {
                    IAC => self.state = State::Iac,
                    b'\r' => {
                        self.text(out, b'\r');
                        self.state = State::CarriageReturn;
                    }
                    0 => {}
                    other => self.text(out, other),
                },
                State::CarriageReturn => {
                    self.state = State::Data;
                    match byte {
                        0 => {}
                        IAC => self.state = State::Iac,
                        b'\r' => {
                            self.text(out, b'\r');
                            self.state = State::CarriageReturn;
                        }
                        other => self.text(out, other),
                    }
                }
                State::Iac => match byte {
                    IAC => {
                        self.text(out, IAC);
                        self.state = State::Data;
                    }
                    WILL | WONT | DO | DONT => self.state = State::Option(byte),
                    SB => {
                        self.sub_len = 0;
                        self.state = State::Sub;
                    }
                    _ => {
                        // NOP, GA, DM, AYT, ...: nothing to do for a login dialogue.
                        self.negotiated()?;
                        self.state = State::Data;
                    }
                },
                State::Option(command) => {
                    self.negotiated()?;
                    self.answer(command, byte, out);
                    self.state = State::Data;
                }
                State::Sub => {
                    if byte == IAC {
                        self.state = State::SubIac;
                    } else {
                        self.sub_len += 1;
                        if self.sub_len > MAX_SUBNEGOTIATION {
                            return Err(NegotiationError::SubnegotiationTooLong);
                        }
                    }
                }
                State::SubIac => {
                    if byte == SE {
                        self.negotiated()?;
                        self.state = State::Data;
                    } else {
                        self.state = State::Sub;
                    }
                }
            }
        }
        Ok(())
    }

    fn text(&mut self, out: &mut Decoded, byte: u8) {
        self.negotiations_since_text = 0;
        out.text.push(byte);
    }

    fn negotiated(&mut self) -> Result<(), NegotiationError> {
        self.negotiations_since_text += 1;
        if self.negotiations_since_text > MAX_NEGOTIATIONS_WITHOUT_TEXT {
            return Err(NegotiationError::Endless(self.negotiations_since_text));
        }
        Ok(())
    }

    fn answer(&mut self, command: u8, option: u8, out: &mut Decoded) {
        let response = match command {
            WILL if matches!(option, OPT_ECHO | OPT_SGA) => DO,
            WILL => DONT,
            DO => WONT,
            // Acknowledging WONT/DONT with the same is what RFC 854 asks, once.
            WONT => DONT,
            _ => WONT,
        };
        let slot = &mut self.answered[option as usize];
        let bit = 1u8 << (command - WILL);
        if *slot & bit == 0 {
            *slot |= bit;
            out.reply.extend_from_slice(&[IAC, response, option]);
        }
    }
}

/// Longest control sequence kept track of; a longer one is dropped as it goes.
const MAX_CONTROL_SEQUENCE: usize = 32;

/// Most terminal queries answered on one connection: a real shell asks a few times per prompt,
/// a device that asks without end gets no more answers than this.
pub const MAX_TERMINAL_ANSWERS: usize = 64;

/// Answer to a cursor position request (ESC[6n): row 24, column 1 of a 24-line terminal.
pub const CURSOR_POSITION_REPORT: &[u8] = b"\x1b[24;1R";
/// Answer to a device attributes request (ESC[c): a VT100 with advanced video.
pub const DEVICE_ATTRIBUTES: &[u8] = b"\x1b[?1;2c";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermState {
    Text,
    Escape,
    /// ESC followed by an intermediate byte (`ESC ( B`): one more byte ends it.
    EscapeIntermediate,
    Csi,
    /// Operating system command or another string (`ESC ]`, `ESC P`, ...), up to BEL or ESC \.
    String,
    StringEscape,
}

/// The terminal side of a login: removes ANSI/VT100 control sequences (colours, cursor moves,
/// titles) from the text and answers the two queries devices wait on before their prompt, the
/// cursor position request (ESC[6n) and the device attributes request (ESC[c), the way a real
/// terminal would. BEL and other C0 controls except CR, LF, TAB and BS are dropped too.
#[derive(Debug, Clone)]
pub struct Terminal {
    state: TermState,
    sequence: Vec<u8>,
    answers: usize,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal { state: TermState::Text, sequence: Vec::with_capacity(MAX_CONTROL_SEQUENCE), answers: 0 }
    }
}

impl Terminal {
    /// Filters `input` (telnet text, negotiation already removed) into `out`: the clean text
    /// goes to `out.text`, answers to queries to `out.reply`.
    pub fn feed(&mut self, input: &[u8], out: &mut Decoded) {
        for &byte in input {
            match self.state {
                TermState::Text => match byte {
                    0x1b => self.state = TermState::Escape,
                    b'\r' | b'\n' | b'\t' | 0x08 => out.text.push(byte),
                    0..=0x1f | 0x7f => {}
                    _ => out.text.push(byte),
                },
                TermState::Escape => match byte {
                    b'[' => {
                        self.sequence.clear();
                        self.state = TermState::Csi;
                    }
                    b']' | b'P' | b'X' | b'^' | b'_' => self.state = TermState::String,
                    0x20..=0x2f => self.state = TermState::EscapeIntermediate,
                    0x1b => {}
                    _ => self.state = TermState::Text,
                },
                TermState::EscapeIntermediate => self.state = TermState::Text,
                TermState::Csi => match byte {
                    0x40..=0x7e => {
                        self.answer(byte, out);
                        self.state = TermState::Text;
                    }
                    0x1b => self.state = TermState::Escape,
                    // A line end inside a sequence means it was never one: give the line back.
                    b'\r' | b'\n' => {
                        out.text.push(byte);
                        self.state = TermState::Text;
                    }
                    _ => {
                        if self.sequence.len() < MAX_CONTROL_SEQUENCE {
                            self.sequence.push(byte);
                        }
                    }
                },
                TermState::String => match byte {
                    0x07 => self.state = TermState::Text,
                    0x1b => self.state = TermState::StringEscape,
                    _ => {}
                },
                TermState::StringEscape => {
                    self.state = if byte == b'\\' { TermState::Text } else { TermState::String };
                }
            }
        }
    }

    fn answer(&mut self, last: u8, out: &mut Decoded) {
        let answer = match (last, self.sequence.as_slice()) {
            (b'n', b"6") | (b'n', b"?6") => CURSOR_POSITION_REPORT,
            (b'c', b"") | (b'c', b"0") => DEVICE_ATTRIBUTES,
            _ => return,
        };
        if self.answers < MAX_TERMINAL_ANSWERS {
            self.answers += 1;
            out.reply.extend_from_slice(answer);
        }
    }
}

/// What the text received so far ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Asks for a login name.
    Login,
    /// Asks for a password.
    Password,
    /// Looks like a shell or CLI prompt.
    Shell,
}

/// Classifies the last line of `text` (the part after the last newline, which is where a prompt
/// that waits for input sits). `None` means the peer is not waiting for us yet.
pub fn classify_prompt(text: &[u8]) -> Option<Prompt> {
    let start = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let tail = &text[start..];
    let tail = String::from_utf8_lossy(tail);
    let tail = tail.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_ascii_lowercase();
    if tail.is_empty() || tail.len() > 200 {
        return None;
    }
    if tail.starts_with("last login") {
        return None;
    }
    let last = tail.chars().last()?;
    if last == ':' || last == '>' && (tail.contains("password") || tail.contains("login")) {
        if tail.contains("password") || tail.contains("passcode") || tail.contains("passwd") {
            return Some(Prompt::Password);
        }
        if ["login", "user", "name", "account"].iter().any(|word| tail.contains(word)) {
            return Some(Prompt::Login);
        }
        return None;
    }
    if matches!(last, '#' | '$' | '>' | '%') {
        return Some(Prompt::Shell);
    }
    None
}

/// What the telnet service showed before any login.
#[derive(Debug, Clone)]
pub struct Greeting {
    /// Text up to and including the first prompt.
    pub banner: Vec<u8>,
    /// The first prompt.
    pub prompt: Prompt,
}

/// A telnet connection at the text level, seen through a terminal (see [`Terminal`]).
pub struct Session<S> {
    conversation: Conversation<S>,
    decoder: Decoder,
    terminal: Terminal,
    text: Vec<u8>,
}

impl<S: Stream> Session<S> {
    /// Wraps a connected stream.
    pub fn new(conversation: Conversation<S>) -> Session<S> {
        Session { conversation, decoder: Decoder::default(), terminal: Terminal::default(), text: Vec::new() }
    }

    /// Reads until the peer waits at a prompt. The text read is kept for [`Session::take_text`].
    pub async fn until_prompt(&mut self) -> Result<Prompt, ConnError> {
        loop {
            if let Some(prompt) = classify_prompt(&self.text) {
                return Ok(prompt);
            }
            self.read_more().await?;
        }
    }

    /// As [`Session::until_prompt`], but a device that has said something and then goes quiet
    /// for [`QUIET`] is waiting too, at a prompt of a shape not known here (`None`).
    async fn until_prompt_or_quiet(&mut self) -> Result<Option<Prompt>, ConnError> {
        loop {
            if let Some(prompt) = classify_prompt(&self.text) {
                return Ok(Some(prompt));
            }
            if has_words(&self.text) {
                if !self.read_within(QUIET).await? {
                    return Ok(None);
                }
            } else {
                self.read_more().await?;
            }
        }
    }

    /// Reads one chunk (waiting at most the read timeout), answers its negotiation and terminal
    /// queries, keeps its text.
    async fn read_more(&mut self) -> Result<(), ConnError> {
        let mut raw = Vec::with_capacity(4096);
        self.conversation.read_some(&mut raw).await?;
        self.absorb(&raw).await
    }

    /// As [`Session::read_more`] waiting at most `wait`; false when nothing came in time.
    async fn read_within(&mut self, wait: std::time::Duration) -> Result<bool, ConnError> {
        let mut raw = Vec::with_capacity(4096);
        match self.conversation.read_some_within(&mut raw, wait).await {
            Ok(_) => {
                self.absorb(&raw).await?;
                Ok(true)
            }
            Err(ConnError::Timeout) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn absorb(&mut self, raw: &[u8]) -> Result<(), ConnError> {
        let mut decoded = Decoded::default();
        self.decoder.feed(raw, &mut decoded).map_err(|e| ConnError::Protocol(e.to_string()))?;
        let mut seen = Decoded { text: Vec::with_capacity(decoded.text.len()), reply: decoded.reply };
        self.terminal.feed(&decoded.text, &mut seen);
        self.text.extend_from_slice(&seen.text);
        // Only the recent text matters for prompts; keep memory flat against chatty peers.
        if self.text.len() > 16 * 1024 {
            let cut = self.text.len() - 8 * 1024;
            self.text.drain(..cut);
        }
        if !seen.reply.is_empty() {
            self.conversation.send(&seen.reply).await?;
        }
        Ok(())
    }

    /// Reads until `needle` appears (true), or the device waits again after at least one line
    /// of new text, at a prompt or silent for [`QUIET`] (false). Every turn reads new bytes
    /// first, so a device that answers with a bare prompt costs a read timeout, never a spin.
    async fn expect_output(&mut self, needle: &[u8]) -> Result<bool, ConnError> {
        loop {
            let read = if ends_after_command(&self.text) {
                self.read_within(QUIET).await
            } else {
                self.read_more().await.map(|()| true)
            };
            // The marker counts even when the shell hung up (or stopped reading) right after it.
            if contains(&self.text, needle) {
                return Ok(true);
            }
            if !read? {
                return Ok(false);
            }
            if classify_prompt(&self.text).is_some() && ends_after_command(&self.text) {
                return Ok(false);
            }
        }
    }

    /// After a password: a login prompt with no failure message may be the start of a longer
    /// greeting cut by the network ("Last login: ..."); give it a moment to go on.
    async fn settle_login_prompt(&mut self) -> Result<Prompt, ConnError> {
        if says_failure(&self.text) {
            return Ok(Prompt::Login);
        }
        let before = self.text.len();
        self.read_within(SETTLE).await?;
        if self.text.len() == before { Ok(Prompt::Login) } else { self.until_prompt().await }
    }

    /// Everything read since the last call.
    pub fn take_text(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.text)
    }

    /// Sends a line (CR LF, as telnet clients do).
    pub async fn send_line(&mut self, line: &str) -> Result<(), ConnError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        for &byte in line.as_bytes() {
            bytes.push(byte);
            if byte == IAC {
                bytes.push(IAC);
            }
        }
        bytes.extend_from_slice(b"\r\n");
        self.conversation.send(&bytes).await
    }

    /// Ends the conversation.
    pub async fn close(self) {
        self.conversation.close().await
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

// A shell prompt that arrives after at least one full line of output (the echoed command).
fn ends_after_command(text: &[u8]) -> bool {
    text.iter().filter(|b| **b == b'\n').count() >= 1
}

fn has_words(text: &[u8]) -> bool {
    text.iter().any(|b| !b.is_ascii_whitespace())
}

/// Whether the text after a password says the login failed ("Login incorrect", "Access
/// denied", ...), whatever prompt follows.
pub fn says_failure(text: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(text).to_ascii_lowercase();
    ["incorrect", "invalid", "fail", "denied", "wrong", "bad ", "error"].iter().any(|m| lower.contains(m))
}

/// How long an unexplained login prompt after a password may still grow.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a device that has printed something may stay silent before it counts as waiting
/// for input (a prompt of a shape not known here, or the end of a command's output).
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long a silent new connection waits before the survey nudges it.
const NUDGE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Connects and reads the greeting.
///
/// A telnetd with a tiny listen backlog (BusyBox hard-codes 1) can leave a connection that the
/// client saw complete but the server never accepted; one byte from the client (IAC NOP) after a
/// short silence makes the kernel recover it. A device that is merely slow loses nothing by it.
pub async fn greet<S: Stream>(mut conversation: Conversation<S>) -> (Option<Session<S>>, Result<Greeting, ConnError>) {
    let mut first = Vec::new();
    match conversation.read_some_within(&mut first, NUDGE_AFTER).await {
        Ok(_) => {}
        Err(ConnError::Timeout) => {
            if let Err(error) = conversation.send(&[IAC, NOP]).await {
                return (None, Err(error));
            }
        }
        Err(error) => return (None, Err(error)),
    }
    let mut session = Session::new(conversation);
    if !first.is_empty()
        && let Err(error) = session.absorb(&first).await
    {
        return (None, Err(error));
    }
    match session.until_prompt().await {
        Ok(prompt) => {
            let banner = session.take_text();
            (Some(session), Ok(Greeting { banner, prompt }))
        }
        Err(error) => {
            let _partial = session.take_text();
            (None, Err(error))
        }
    }
}

/// What the marker command showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmation {
    /// The shell printed the marker: a real shell.
    Echoed,
    /// The device asked for a login or password again: the login had not been accepted.
    BackAtLogin(Prompt),
    /// Output, then a prompt or silence, and no marker: not a shell that runs `echo`.
    NoEcho,
}

/// Proves a shell is real: `echo X''Y` must print `XY`.
async fn confirm_shell<S: Stream>(session: &mut Session<S>, token: u64) -> Result<Confirmation, ConnError> {
    let (left, right) = (token % 1_000_000, (token / 1_000_000) % 1_000_000);
    let expected = format!("bs{left:06}{right:06}");
    session.take_text();
    session.send_line(&format!("echo bs{left:06}''{right:06}")).await?;
    if session.expect_output(expected.as_bytes()).await? {
        return Ok(Confirmation::Echoed);
    }
    Ok(match classify_prompt(&session.text) {
        Some(prompt @ (Prompt::Login | Prompt::Password)) => Confirmation::BackAtLogin(prompt),
        _ => Confirmation::NoEcho,
    })
}

/// Tries the dictionary over as many connections as needed; stops at the first pair that yields a
/// confirmed shell. `first` is the session the greeting was read on (at its first prompt).
///
/// An attempt that ends in an error (reset, timeout) or in a login the device accepted but that
/// could not be confirmed is tried once more with the same pair on a fresh connection; both
/// attempts are in the audit trail.
pub async fn login<S: Stream, F, Fut>(
    context: &LoginContext<'_>,
    first: Session<S>,
    first_prompt: Prompt,
    reconnect: F,
) -> LoginOutcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Conversation<S>, ConnError>>,
{
    let mut session = Some((first, first_prompt));
    if first_prompt == Prompt::Shell {
        let (mut open, _) = session.take().expect("just set");
        let confirmed = confirm_shell(&mut open, context.token()).await;
        open.close().await;
        return match confirmed {
            Ok(Confirmation::Echoed) => LoginOutcome::NoAuthentication,
            Ok(_) => LoginOutcome::NotFound { tried: 0 },
            Err(error) => LoginOutcome::Aborted { tried: 0, error },
        };
    }
    let mut tried = 0;
    let mut failures_in_a_row = 0;
    let mut retried = false;
    let credentials = context.credentials();
    let mut index = 0;
    while index < credentials.len() {
        let credential = &credentials[index];
        let (mut open, prompt) = match session.take() {
            Some(open) => open,
            None => {
                let conversation = match reconnect().await {
                    Ok(conversation) => conversation,
                    Err(error) => return LoginOutcome::Aborted { tried, error },
                };
                let (open, greeting) = greet(conversation).await;
                match (open, greeting) {
                    (Some(open), Ok(greeting)) if greeting.prompt != Prompt::Shell => (open, greeting.prompt),
                    (_, Err(error)) => {
                        failures_in_a_row += 1;
                        if failures_in_a_row >= 3 {
                            return LoginOutcome::Aborted { tried, error };
                        }
                        continue;
                    }
                    _ => {
                        return LoginOutcome::Aborted {
                            tried,
                            error: ConnError::Protocol("shell without login on reconnect".into()),
                        };
                    }
                }
            }
        };
        if !context.take_attempt() {
            open.close().await;
            return LoginOutcome::BudgetExhausted { tried };
        }
        tried += 1;
        let result = attempt(&mut open, prompt, &credential.username, &credential.password, context.token()).await;
        match result {
            Ok(Step::Success) => {
                context.audit(credential.id, Attempt::Success).await;
                let _ = open.send_line("exit").await;
                open.close().await;
                return LoginOutcome::Found { credential_id: credential.id, tried };
            }
            Ok(Step::Failed(next)) => {
                context.audit(credential.id, Attempt::Failure).await;
                failures_in_a_row = 0;
                retried = false;
                index += 1;
                match next {
                    // A login prompt starts the next pair cleanly. A password prompt again would
                    // pair the next password with this username: start afresh instead.
                    Some(Prompt::Login) => session = Some((open, Prompt::Login)),
                    _ => open.close().await,
                }
            }
            Ok(Step::Unconfirmed) => {
                // Let in, never proven: evidence for the audit and the summary, not a finding.
                context.audit(credential.id, Attempt::Unconfirmed).await;
                open.close().await;
                failures_in_a_row = 0;
                context.retry_once_then_next(&mut retried, &mut index);
            }
            Err((ConnError::Closed | ConnError::Reset, false)) => {
                // Hung up before the password went out (devices close after three tries): the pair
                // was not tried; try it again on a new connection.
                tried -= 1;
                context.refund_attempt();
                failures_in_a_row += 1;
                if failures_in_a_row >= 3 {
                    return LoginOutcome::Aborted { tried, error: ConnError::Closed };
                }
            }
            Err((ConnError::Closed, true)) => {
                // Hung up (an orderly close) after the password: the device's way of saying no.
                context.audit(credential.id, Attempt::Failure).await;
                failures_in_a_row = 0;
                retried = false;
                index += 1;
            }
            Err((error, _)) => {
                context.audit(credential.id, Attempt::Error).await;
                failures_in_a_row += 1;
                if failures_in_a_row >= 2 {
                    return LoginOutcome::Aborted { tried, error };
                }
                context.retry_once_then_next(&mut retried, &mut index);
            }
        }
    }
    LoginOutcome::NotFound { tried }
}

enum Step {
    Success,
    /// Rejected; the prompt the device showed next, if any.
    Failed(Option<Prompt>),
    /// Accepted (no failure text, no new login prompt) but not proven a shell.
    Unconfirmed,
}

/// One pair on an open session. Errors say whether the password had been sent.
///
/// After the password, what follows is judged the way a person at a terminal would: a login or
/// password prompt, or a failure text, is a rejection; anything else (a shell prompt of any
/// shape, or text followed by silence) is asked to `echo` a marker.
async fn attempt<S: Stream>(
    session: &mut Session<S>,
    prompt: Prompt,
    username: &str,
    password: &str,
    token: u64,
) -> Result<Step, (ConnError, bool)> {
    session.take_text();
    let mut prompt = Some(prompt);
    if prompt == Some(Prompt::Login) {
        session.send_line(username).await.map_err(|e| (e, false))?;
        prompt = Some(session.until_prompt().await.map_err(|e| (e, false))?);
        if prompt == Some(Prompt::Login) {
            return Ok(Step::Failed(prompt));
        }
    }
    if prompt == Some(Prompt::Password) {
        session.take_text();
        session.send_line(password).await.map_err(|e| (e, false))?;
        prompt = session.until_prompt_or_quiet().await.map_err(|e| (e, true))?;
        if prompt == Some(Prompt::Login) {
            prompt = Some(session.settle_login_prompt().await.map_err(|e| (e, true))?);
        }
    }
    match prompt {
        Some(Prompt::Shell) => {}
        None if !says_failure(&session.text) => {}
        other => return Ok(Step::Failed(other)),
    }
    match confirm_shell(session, token).await {
        Ok(Confirmation::Echoed) => Ok(Step::Success),
        Ok(Confirmation::BackAtLogin(prompt)) => Ok(Step::Failed(Some(prompt))),
        Ok(Confirmation::NoEcho) => Ok(Step::Unconfirmed),
        // Let in, then lost before the proof (reset, timeout, hang-up).
        Err(_) => Ok(Step::Unconfirmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(input: &[u8]) -> Decoded {
        let mut out = Decoded::default();
        Decoder::default().feed(input, &mut out).unwrap();
        out
    }

    #[test]
    fn negotiation_is_answered_once_and_removed_from_text() {
        let out = decode(&[IAC, WILL, OPT_ECHO, IAC, DO, 24, b'h', b'i', IAC, WILL, OPT_ECHO, IAC, IAC]);
        assert_eq!(out.text, vec![b'h', b'i', IAC]);
        assert_eq!(out.reply, vec![IAC, DO, OPT_ECHO, IAC, WONT, 24]);
    }

    #[test]
    fn subnegotiation_and_cr_nul_are_handled() {
        let out = decode(&[IAC, SB, 24, 1, IAC, SE, b'a', b'\r', 0, b'b']);
        assert_eq!(out.text, b"a\rb");
    }

    #[test]
    fn endless_negotiation_is_an_error() {
        let mut decoder = Decoder::default();
        let mut out = Decoded::default();
        let flood: Vec<u8> = (0..=MAX_NEGOTIATIONS_WITHOUT_TEXT).flat_map(|i| [IAC, DO, (i % 200) as u8]).collect();
        assert!(matches!(decoder.feed(&flood, &mut out), Err(NegotiationError::Endless(_))));
    }

    #[test]
    fn overlong_subnegotiation_is_an_error() {
        let mut input = vec![IAC, SB, 24];
        input.extend(std::iter::repeat_n(b'x', 2000));
        let mut out = Decoded::default();
        assert_eq!(Decoder::default().feed(&input, &mut out), Err(NegotiationError::SubnegotiationTooLong));
    }

    #[test]
    fn prompts_of_real_devices_are_recognised() {
        for (text, expected) in [
            ("BusyBox v1.36.1\r\nrouter login: ", Some(Prompt::Login)),
            ("Username:", Some(Prompt::Login)),
            ("User Name : ", Some(Prompt::Login)),
            ("Password: ", Some(Prompt::Password)),
            ("\r\n\r\nBusyBox v1.36.1 built-in shell (ash)\r\n~ # ", Some(Prompt::Shell)),
            ("SR-300> ", Some(Prompt::Shell)),
            ("$ ", Some(Prompt::Shell)),
            ("Welcome to the device", None),
            ("Login incorrect\r\n", None),
            ("", None),
        ] {
            assert_eq!(classify_prompt(text.as_bytes()), expected, "{text:?}");
        }
    }

    #[tokio::test]
    async fn a_bare_prompt_after_the_echo_costs_a_timeout_not_a_spin() {
        let (client, mut device) = tokio::io::duplex(4096);
        let limits = crate::conn::Limits { read: std::time::Duration::from_millis(100), ..Default::default() };
        let mut session = Session::new(Conversation::new(client, limits));
        tokio::io::AsyncWriteExt::write_all(&mut device, b"# ").await.unwrap();
        let confirmed = tokio::time::timeout(std::time::Duration::from_secs(5), confirm_shell(&mut session, 42)).await;
        assert!(matches!(confirmed, Ok(Err(ConnError::Timeout))), "{confirmed:?}");
    }

    #[test]
    fn last_login_lines_are_not_login_prompts() {
        assert_eq!(classify_prompt(b"Password: \r\nLast login:"), None);
    }

    fn see(input: &[u8]) -> Decoded {
        let mut out = Decoded::default();
        Terminal::default().feed(input, &mut out);
        out
    }

    #[test]
    fn busybox_ash_cursor_query_after_the_prompt_is_answered_and_the_prompt_recognised() {
        let out = see(b"\r\nBusyBox v1.35.0 built-in shell (ash)\r\n\r\n~ $ \x1b[6n");
        assert_eq!(out.reply, CURSOR_POSITION_REPORT);
        assert_eq!(classify_prompt(&out.text), Some(Prompt::Shell));
    }

    #[test]
    fn colour_codes_and_titles_are_removed_and_device_attributes_answered() {
        let out = see(b"\x1b]0;cam\x07\x1b[1;33mIPC-3000\x1b[0m\x1b(B\r\n\x1b[c\x1b[1;32mipc:~$ \x1b[0m");
        assert_eq!(out.text, b"IPC-3000\r\nipc:~$ ");
        assert_eq!(out.reply, DEVICE_ATTRIBUTES);
        assert_eq!(classify_prompt(&out.text), Some(Prompt::Shell));
    }

    #[test]
    fn a_device_that_asks_without_end_gets_a_bounded_number_of_answers() {
        let flood = b"\x1b[c".repeat(10_000);
        assert_eq!(see(&flood).reply.len(), MAX_TERMINAL_ANSWERS * DEVICE_ATTRIBUTES.len());
    }

    #[test]
    fn other_queries_are_not_answered() {
        assert!(see(b"\x1b[5n\x1b[>c\x1b[18t\x1b[2J").reply.is_empty());
    }

    #[test]
    fn a_broken_sequence_gives_the_line_back() {
        assert_eq!(see(b"\x1b[12\r\nlogin: ").text, b"\r\nlogin: ");
    }

    #[test]
    fn failure_texts_are_recognised() {
        assert!(says_failure(b"\r\nLogin incorrect\r\n"));
        assert!(says_failure(b"% Access denied\r\n"));
        assert!(!says_failure(b"\r\nBusyBox v1.35.0 built-in shell (ash)\r\n~ $ "));
    }

    #[tokio::test]
    async fn a_shell_that_asks_for_the_cursor_position_is_confirmed() {
        let (client, device) = tokio::io::duplex(4096);
        let limits = crate::conn::Limits { read: std::time::Duration::from_secs(5), ..Default::default() };
        let mut session = Session::new(Conversation::new(client, limits));
        let shell = tokio::spawn(async move {
            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            let (read, mut write) = tokio::io::split(device);
            let mut lines = tokio::io::BufReader::new(read);
            write.write_all(b"~ $ \x1b[6n").await.unwrap();
            let mut answer = Vec::new();
            lines.read_until(b'R', &mut answer).await.unwrap();
            let mut command = String::new();
            lines.read_line(&mut command).await.unwrap();
            let output = command.trim().trim_start_matches("echo ").replace("''", "");
            write.write_all(format!("{}\r\n{output}\r\n~ $ \x1b[6n", command.trim()).as_bytes()).await.unwrap();
            answer
        });
        assert_eq!(session.until_prompt().await.unwrap(), Prompt::Shell);
        assert_eq!(confirm_shell(&mut session, 42).await.unwrap(), Confirmation::Echoed);
        assert_eq!(shell.await.unwrap(), CURSOR_POSITION_REPORT);
    }

    #[tokio::test]
    async fn a_cli_without_echo_is_not_confirmed() {
        let (client, mut device) = tokio::io::duplex(4096);
        let limits = crate::conn::Limits { read: std::time::Duration::from_secs(5), ..Default::default() };
        let mut session = Session::new(Conversation::new(client, limits));
        tokio::io::AsyncWriteExt::write_all(&mut device, b"% Unknown command: echo\r\nRT-AC68U> ").await.unwrap();
        assert_eq!(confirm_shell(&mut session, 7).await.unwrap(), Confirmation::NoEcho);
    }

    proptest! {
        #[test]
        fn terminal_never_grows_text_and_replies_stay_bounded(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let out = see(&input);
            prop_assert!(out.text.len() <= input.len());
            // ESC[c (3 bytes) is answered with 7.
            prop_assert!(out.reply.len() <= 3 * input.len());
            prop_assert!(out.reply.len() <= MAX_TERMINAL_ANSWERS * CURSOR_POSITION_REPORT.len());
            prop_assert!(!out.text.contains(&0x1b));
        }

        #[test]
        fn terminal_in_pieces_equals_terminal_at_once(input in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
            let cut = cut.min(input.len());
            let mut terminal = Terminal::default();
            let mut pieces = Decoded::default();
            terminal.feed(&input[..cut], &mut pieces);
            terminal.feed(&input[cut..], &mut pieces);
            prop_assert_eq!(see(&input), pieces);
        }

        #[test]
        fn coloured_prompts_classify_as_plain_ones(prompt in "[a-z0-9~:/ -]{0,20}[#$>] ", colour in 30u8..38) {
            let coloured = format!("\x1b[1;{colour}m{prompt}\x1b[0m\x1b[6n");
            prop_assert_eq!(classify_prompt(&see(coloured.as_bytes()).text), classify_prompt(prompt.as_bytes()));
        }

        #[test]
        fn decoder_never_panics_and_text_never_exceeds_input(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut out = Decoded::default();
            let _ = Decoder::default().feed(&input, &mut out);
            prop_assert!(out.text.len() <= input.len());
            prop_assert!(out.reply.len() <= 3 * 256 * 4);
        }

        #[test]
        fn feeding_in_pieces_equals_feeding_at_once(input in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
            let cut = cut.min(input.len());
            let mut whole = Decoded::default();
            let a = Decoder::default().feed(&input, &mut whole);
            let mut pieces = Decoded::default();
            let mut decoder = Decoder::default();
            let b = decoder.feed(&input[..cut], &mut pieces).and_then(|_| decoder.feed(&input[cut..], &mut pieces));
            prop_assert_eq!(a.is_ok(), b.is_ok());
            if a.is_ok() {
                prop_assert_eq!(whole, pieces);
            }
        }

        #[test]
        fn plain_text_passes_through(text in "[a-zA-Z0-9 :#>$\n]{0,200}") {
            prop_assert_eq!(decode(text.as_bytes()).text, text.as_bytes());
        }
    }
}
