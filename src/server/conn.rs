//! One connection's guard: an IO wrapper between the socket and hyper that enforces the header
//! and idle timeouts and gives hyper's own refusals the JSON body every other refusal has.
//!
//! Why a wrapper and not hyper's settings:
//! - hyper 1's `header_read_timeout` starts when it begins waiting for a request head, which on
//!   a keep-alive connection is as soon as the previous answer was written
//!   (`proto/h1/conn.rs::poll_read_head`): it cannot tell an idle connection (allowed
//!   `idle_timeout`) from one trickling a head (allowed `header_read_timeout`), and it closes
//!   the connection without an answer. Here the idle clock runs while no request is being
//!   handled and nothing moves; the header clock from the first byte of a request (or from the
//!   accept, on a new connection) until hyper hands the request to the service; a request head
//!   that times out is answered `408 {"error": ...}` before the connection is closed.
//! - hyper answers a request head it cannot parse itself (`Conn::on_parse_error` writes a bare
//!   head with `content-length: 0`: 400, 414 or 431) and has no hook to change it. The wrapper
//!   recognises that head in what hyper writes and replaces it. It can tell it from an answer of
//!   tally's: tally never answers 400, 414 or 431 without a body.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// How long, and for how many bytes, a connection refused mid-request is read after the
/// refusal, so that closing it with unread bytes (a reset) does not destroy the refusal before
/// the client reads it (nginx's "lingering close").
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// The preface an HTTP/2 client with prior knowledge starts with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection was waiting for when it timed out (the `phase` label of
/// `tally_connections_timed_out_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The rest of a request's line and headers.
    Header,
    /// A next request, or the client reading an answer.
    Idle,
    /// A request body.
    Body,
}

impl Phase {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Header => "header",
            Phase::Idle => "idle",
            Phase::Body => "body",
        }
    }
}

/// The header and idle timeouts of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request (or the accept) to its complete head.
    pub header: Duration,
    /// Without a request being handled and without a byte moving.
    pub idle: Duration,
}

/// What the service tells the wrapper of its connection: how many requests are being handled.
#[derive(Debug)]
pub struct Calls {
    started: Instant,
    active: AtomicUsize,
    total: AtomicU64,
    /// Milliseconds after `started` when the last call ended.
    ended_ms: AtomicU64,
}

impl Calls {
    /// A new connection's, with no call yet.
    pub fn new() -> Arc<Calls> {
        Arc::new(Calls {
            started: Instant::now(),
            active: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            ended_ms: AtomicU64::new(0),
        })
    }

    /// Marks a request as handed to the service, until the guard is dropped (its answer is
    /// then hyper's to write).
    pub fn enter(self: &Arc<Self>) -> CallGuard {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        CallGuard(self.clone())
    }

    fn ended_at(&self) -> Instant {
        self.started + Duration::from_millis(self.ended_ms.load(Ordering::Relaxed))
    }
}

/// A request being handled; see [`Calls::enter`].
pub struct CallGuard(Arc<Calls>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.ended_ms.store(ms, Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Which protocol the connection speaks, as far as its first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// This many bytes matched the HTTP/2 preface so far.
    Undecided(usize),
    Http1,
    Http2,
}

/// The socket of one connection, guarded; see the module documentation.
pub struct GuardedIo<T> {
    inner: T,
    calls: Arc<Calls>,
    timeouts: Timeouts,
    metrics: Arc<Metrics>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    last_progress: Instant,
    /// When the first byte of a request not yet handed to the service arrived.
    request_started: Option<Instant>,
    /// `calls.total` when `request_started` was set: a newer call means the head was complete.
    calls_seen: u64,
    protocol: Protocol,
    /// Bytes to write before anything else (a rewritten answer), and how many are written.
    pending: Vec<u8>,
    pending_at: usize,
    rewritten: bool,
    /// After a refusal: the write side is shut and the rest of the request read until then.
    linger: Option<(Instant, usize)>,
}

impl<T> GuardedIo<T> {
    /// Guards `inner`, which was accepted just now.
    pub fn new(inner: T, calls: Arc<Calls>, timeouts: Timeouts, metrics: Arc<Metrics>) -> Self {
        let now = Instant::now();
        GuardedIo {
            inner,
            calls,
            timeouts,
            metrics,
            sleep: Box::pin(tokio::time::sleep_until(now + timeouts.header)),
            armed: Some(now + timeouts.header),
            last_progress: now,
            request_started: None,
            calls_seen: 0,
            protocol: Protocol::Undecided(0),
            pending: Vec::new(),
            pending_at: 0,
            rewritten: false,
            linger: None,
        }
    }

    /// When the connection times out, and waiting for what; `None` while a request is handled.
    fn deadline(&mut self) -> Option<(Instant, Phase)> {
        let total = self.calls.total.load(Ordering::Relaxed);
        if total != self.calls_seen {
            // hyper handed the request whose first byte started the header clock to the service.
            self.calls_seen = total;
            self.request_started = None;
        }
        if self.calls.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.protocol == Protocol::Http2 {
            // Pings and settings move bytes on an idle HTTP/2 connection: only requests count.
            let since = if total == 0 {
                self.calls.started
            } else {
                self.calls.ended_at()
            };
            return Some((since + self.timeouts.idle, Phase::Idle));
        }
        if let Some(first) = self.request_started {
            return Some((first + self.timeouts.header, Phase::Header));
        }
        if total == 0 {
            // A new connection has the header timeout to send its first request.
            return Some((self.calls.started + self.timeouts.header, Phase::Idle));
        }
        let since = self.last_progress.max(self.calls.ended_at());
        Some((since + self.timeouts.idle, Phase::Idle))
    }

    /// Whether the deadline has passed; arms the timer (and its wake-up) if not.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Phase> {
        let (at, phase) = self.deadline()?;
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(at);
            self.armed = Some(at);
        }
        self.sleep.as_mut().poll(cx).is_ready().then_some(phase)
    }

    /// Notes bytes read: which protocol, and whether a new request began.
    fn observe_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.last_progress = Instant::now();
        if let Protocol::Undecided(matched) = self.protocol {
            let n = bytes.len().min(H2_PREFACE.len() - matched);
            self.protocol = if bytes[..n] != H2_PREFACE[matched..matched + n] {
                Protocol::Http1
            } else if matched + n == H2_PREFACE.len() {
                Protocol::Http2
            } else {
                Protocol::Undecided(matched + n)
            };
        }
        if self.protocol != Protocol::Http2
            && self.request_started.is_none()
            && self.calls.active.load(Ordering::Acquire) == 0
        {
            self.request_started = Some(Instant::now());
            self.calls_seen = self.calls.total.load(Ordering::Relaxed);
        }
    }

    /// Counts the timeout and gives hyper the error that makes it close the connection.
    fn time_out(&mut self, phase: Phase) -> io::Error {
        self.metrics.timed_out(phase.label());
        if phase == Phase::Header && self.protocol != Protocol::Http2 && !self.rewritten {
            let secs = self.timeouts.header.as_secs();
            let message = format!("the request headers did not arrive within {secs} seconds");
            self.pending
                .extend_from_slice(&refusal(408, "Request Timeout", &message, None));
            self.rewritten = true;
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{} timeout", phase.label()),
        )
    }
}

impl<T: AsyncWrite + Unpin> GuardedIo<T> {
    /// Writes what is pending; `Ready(Ok)` once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_at < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_at += n;
            self.last_progress = Instant::now();
        }
        self.pending.clear();
        self.pending_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled()[before..].to_vec();
                this.observe_read(&filled);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.expired(cx) {
                Some(phase) => {
                    let err = this.time_out(phase);
                    // The 408 goes out now if the socket takes it (a connection that never
                    // got an answer has room); hyper closes the connection after the error.
                    let _ = this.poll_pending(cx);
                    Poll::Ready(Err(err))
                }
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_pending(cx)?.is_pending() {
            return match this.expired(cx) {
                Some(phase) => Poll::Ready(Err(this.time_out(phase))),
                None => Poll::Pending,
            };
        }
        if this.protocol != Protocol::Http2
            && !this.rewritten
            && let Some((at, replacement)) = rewrite_refusal(buf)
        {
            this.rewritten = true;
            this.pending.extend_from_slice(&buf[..at]);
            this.pending.extend_from_slice(&replacement);
            // Taken whole: what the socket does not take now, poll_flush writes.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.last_progress = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A client that does not read its answer is idle too.
            Poll::Pending => match this.expired(cx) {
                Some(phase) => Poll::Ready(Err(this.time_out(phase))),
                None => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_pending(cx)?.is_pending() {
            return match this.expired(cx) {
                Some(phase) => Poll::Ready(Err(this.time_out(phase))),
                None => Poll::Pending,
            };
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A rewritten answer is worth a moment, not more than the deadline.
        if this.poll_pending(cx)?.is_pending() && this.expired(cx).is_none() {
            return Poll::Pending;
        }
        if !this.rewritten {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        }
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            let until = Instant::now() + LINGER;
            this.sleep.as_mut().reset(until);
            this.armed = Some(until);
            this.linger = Some((until, 0));
        }
        let mut scratch = [0u8; 8192];
        loop {
            let Some((_, read)) = this.linger else {
                return Poll::Ready(Ok(()));
            };
            if read >= LINGER_BYTES || this.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {
                    this.linger = this.linger.map(|(u, r)| (u, r + buf.filled().len()));
                }
                // The client closed too, or the connection failed: done.
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// If `buf` ends with hyper's own answer to a request head it could not parse, where it starts
/// and the answer with a JSON body to write instead.
///
/// hyper writes such an answer as a bare head, `HTTP/1.1 <400|414|431> ...` with
/// `content-length: 0` and no body, and closes the connection after it, so it is the last thing
/// written; tally's own refusals always have a body.
pub fn rewrite_refusal(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf.windows(9).rposition(|w| w == b"HTTP/1.1 ")?;
    let head = &buf[start..];
    // The head must be one head: its only blank line is the one it ends with.
    if head[..head.len() - 4].windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let (code, reason, message) = match text.get(9..12)? {
        "400" => (400, "Bad Request", "malformed request"),
        "414" => (414, "URI Too Long", "the request target is too long"),
        "431" => (
            431,
            "Request Header Fields Too Large",
            "the request headers are too large",
        ),
        _ => return None,
    };
    let mut date = None;
    let mut empty = false;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            empty = value == "0";
        } else if name.eq_ignore_ascii_case("date") {
            date = Some(value);
        }
    }
    if !empty {
        return None;
    }
    Some((start, refusal(code, reason, message, date)))
}

/// A whole HTTP/1.1 refusal with the body `{"error": message}`, closing the connection.
fn refusal(code: u16, reason: &str, message: &str, date: Option<&str>) -> Vec<u8> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {}\r\ncache-control: no-store\r\n\
         connection: close\r\ncontent-length: {}\r\n",
        crate::http::JSON,
        body.len()
    );
    if let Some(d) = date {
        out.push_str(&format!("date: {d}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_refusals_get_a_json_body() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
        let (at, out) = rewrite_refusal(hyper_400).unwrap();
        assert_eq!(at, 0);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("content-type: application/json\r\n"));
        assert!(out.contains("date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"));
        assert!(
            out.ends_with("\r\n\r\n{\"error\":\"malformed request\"}"),
            "{out}"
        );
        let body_len = "{\"error\":\"malformed request\"}".len();
        assert!(out.contains(&format!("content-length: {body_len}\r\n")));
        for (head, code) in [
            (
                &b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n"[..],
                "414",
            ),
            (
                &b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n"[..],
                "431",
            ),
        ] {
            let (_, out) = rewrite_refusal(head).unwrap();
            assert!(
                String::from_utf8(out)
                    .unwrap()
                    .starts_with(&format!("HTTP/1.1 {code}"))
            );
        }
        // After the tail of an earlier answer in the same write.
        let mut two = b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n".to_vec();
        let at = two.len();
        two.extend_from_slice(hyper_400);
        assert_eq!(rewrite_refusal(&two).unwrap().0, at);
    }

    #[test]
    fn tallys_own_answers_pass() {
        for own in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{\"error\":1}",
            b"",
        ] {
            assert!(rewrite_refusal(own).is_none(), "{}", String::from_utf8_lossy(own));
        }
    }
}
