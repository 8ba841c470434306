//! The front gate of the status page: bounds what one client can cost before tiny_http sees it.
//!
//! tiny_http accepts without limit (a thread and two descriptors per connection), buffers a
//! request head of any length, reads bodies lazily on one of its two request threads, and
//! ends its accept loop for good on the first accept error (EMFILE at the open-file limit).
//! So the public TCP port is ours. The gate:
//! - holds [`MAX_CONNECTIONS`] slots, [`MAX_UNSETTLED_PER_ADDRESS`] per address until a
//!   request is complete; a newcomer evicts an incomplete one (`crate::slots`), so idle or
//!   dribbling sockets lock nobody out; only when every slot serves a complete request is a
//!   newcomer answered 503 (no thread spent);
//! - reads the head within [`MAX_HEAD`] bytes and [`HEAD_DEADLINE`], and the whole body
//!   (at most [`MAX_BODY`], within [`BODY_DEADLINE`]) before anything reaches tiny_http, so
//!   a request thread never waits on a client; a body is not read at all for a request
//!   without a bearer token, and all bodies held at once stay within [`BODY_BUDGET`] (else
//!   503, retry after 1 s); chunked bodies (411) and other HTTP versions (505) are refused;
//! - passes `/healthz` and `/metrics` to a request thread of their own (a second socket), so
//!   they answer whatever the page's two threads are doing;
//! - forces `Connection: close`, half-closes its side upstream, copies the answer back, and
//!   stops waiting as soon as the client has gone.
//!
//! An accept error is logged and retried: the listener survives running out of descriptors.

use super::https::{Acceptor, Conn};
pub use crate::http_head::{parse_head, Head, MAX_HEAD, PEER_HEADER};
use crate::slots::{lock, Entry, SharedSlots, SlotId};
use log::warn;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Connections one address may hold whose request is not complete yet: half the table, and
/// more than a browser opens (Chromium keeps 6 per host and preconnects spares; at 8 its spare
/// sockets were closed under it and a PATCH from the page was lost).
pub const MAX_UNSETTLED_PER_ADDRESS: usize = 16;
/// The time a client has to send its request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The time a client has, after its head, to send the whole body.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// The largest request body passed on: a meter is about 1 KiB of JSON, so an import through
/// the API of some 250 meters (`dlms-bridge meter import` takes any number).
pub const MAX_BODY: u64 = 256 << 10;
/// Request bodies the gate holds at once, all connections together: 32 clients sending 1 MiB
/// each cost 45 MiB of RSS before this (helper-4), much of it kept by the allocator's
/// per-thread arenas after it was freed; at 4 MiB in all, still 26 MiB.
pub const BODY_BUDGET: u64 = 1 << 20;

/// Body bytes held now, by every gate of the process.
static BUFFERED: AtomicU64 = AtomicU64::new(0);

/// A share of [`BODY_BUDGET`], given back when dropped.
struct BodyShare(u64);

impl BodyShare {
    fn take(bytes: u64) -> Option<BodyShare> {
        BUFFERED
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= BODY_BUDGET).then_some(held + bytes)
            })
            .ok()
            .map(|_| BodyShare(bytes))
    }
}

impl Drop for BodyShare {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(self.0, Ordering::AcqRel);
    }
}
/// Per-connection threads only copy bytes (and, with HTTPS, run OpenSSL's handshake).
const STACK: usize = 128 * 1024;
/// How long the gate waits for tiny_http's answer (a scan from the page takes a while).
const UPSTREAM_WAIT: Duration = Duration::from_secs(120);
/// How often a client waiting for its answer is checked for having left.
const CLIENT_CHECK: Duration = Duration::from_millis(250);

/// The Unix sockets behind the gate: the page's request threads, and the probes' own.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub main: PathBuf,
    pub probes: PathBuf,
}

impl Upstreams {
    /// `/healthz` and `/metrics` go to their own thread.
    fn for_request(&self, method: &str, target: &str) -> &PathBuf {
        let path = target.split('?').next().unwrap_or("");
        let probe = matches!(method, "GET" | "HEAD") && matches!(path, "/healthz" | "/metrics");
        if probe {
            &self.probes
        } else {
            &self.main
        }
    }
}

type Table = SharedSlots;

pub struct Gate {
    stop: Arc<AtomicBool>,
    pub addr: std::net::SocketAddr,
}

impl Gate {
    /// Serves `listener` (HTTPS with `tls`), passing requests to the Unix sockets `upstreams`.
    pub fn start(
        listener: TcpListener,
        upstreams: Upstreams,
        tls: Option<Acceptor>,
    ) -> std::io::Result<Gate> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let table = crate::slots::shared(MAX_CONNECTIONS, MAX_UNSETTLED_PER_ADDRESS);
        std::thread::Builder::new()
            .name("http-gate".into())
            .spawn(move || accept_loop(&listener, &upstreams, tls.as_ref(), &table, &s))?;
        Ok(Gate { stop, addr })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn accept_loop(
    listener: &TcpListener,
    upstreams: &Upstreams,
    tls: Option<&Acceptor>,
    table: &Table,
    stop: &AtomicBool,
) {
    let mut last_warning: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let (mut client, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // EMFILE/ENFILE and the like: keep listening, slower, and say so now and then.
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    warn!("status page: cannot accept a connection ({e}); still listening");
                    last_warning = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let id = match crate::slots::admit_connection(table, &client, peer.ip()) {
            Some(Entry::Admitted { id, .. }) => id,
            Some(Entry::Refused) => {
                if tls.is_none() {
                    let _ = client.set_write_timeout(Some(Duration::from_millis(200)));
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
                    );
                }
                // With TLS no thread for a handshake: closed.
                continue;
            }
            None => continue,
        };
        let (t, upstreams, tls) = (table.clone(), upstreams.clone(), tls.cloned());
        let peer = peer.ip().to_string();
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(STACK)
            .spawn(move || {
                // The handshake, too, within the head's deadline.
                let _ = client.set_read_timeout(Some(HEAD_DEADLINE));
                let _ = client.set_write_timeout(Some(Duration::from_secs(10)));
                if let Some(mut conn) = super::https::wrap(tls.as_ref(), client) {
                    // A handshake is speaking; a plain connection is heard in `serve`.
                    if tls.is_some() {
                        lock(&t).heard(id);
                    }
                    let _ = serve(conn.as_mut(), &peer, id, &t, &upstreams, tls.is_none());
                    conn.close();
                }
                lock(&t).release(id);
            });
        if spawned.is_err() {
            lock(table).release(id);
        }
    }
}

fn reply(client: &mut dyn Conn, status: &str) -> std::io::Result<()> {
    reply_with(client, status, "")
}

/// `headers`: whole lines, each ending in CRLF.
fn reply_with(client: &mut dyn Conn, status: &str, headers: &str) -> std::io::Result<()> {
    client.write_all(
        format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// Reads until `done` says the bytes so far are enough, or the deadline passes (`Ok(None)`:
/// timed out; `Err`: the client left or failed).
fn read_until(
    client: &mut dyn Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
    held: &dyn Fn() -> bool,
    done: impl Fn(&[u8]) -> bool,
) -> std::io::Result<Option<()>> {
    let mut chunk = [0u8; 4096];
    while !done(buf) {
        // Evicted: stop at once, whatever its socket still buffers.
        if !held() {
            return Err(std::io::ErrorKind::ConnectionAborted.into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        client.tcp().set_read_timeout(Some(left))?;
        match client.read(&mut chunk) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(()))
}

fn serve(
    client: &mut dyn Conn,
    peer: &str,
    id: SlotId,
    table: &Table,
    upstreams: &Upstreams,
    plain: bool,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_deadline = Instant::now() + HEAD_DEADLINE;
    let held = || lock(table).holds(id);
    // Through TLS the raw socket says nothing of what OpenSSL has buffered: not peeked.
    if plain && !crate::slots::wait_to_hear(table, id, client.tcp(), head_deadline)? {
        return reply(client, "408 Request Timeout");
    }
    if read_until(client, &mut buf, head_deadline, &held, |b| {
        parse_head(b, peer).is_some()
    })?
    .is_none()
    {
        return reply(client, "408 Request Timeout");
    }
    let Some(head) = parse_head(&buf, peer) else {
        return Ok(());
    };
    let refusal = match &head {
        Head::Complete { .. } => None,
        Head::TooLarge => Some("431 Request Header Fields Too Large"),
        Head::Malformed => Some("400 Bad Request"),
        Head::Unsupported(status) => Some(*status),
    };
    if let Some(status) = refusal {
        return reply(client, status);
    }
    let Head::Complete {
        head,
        content_length,
        extra: mut body,
        method,
        target,
        bearer,
        expects_continue,
    } = head
    else {
        return Ok(());
    };
    if content_length > MAX_BODY {
        return reply(client, "413 Content Too Large");
    }
    // Held until the body has been passed on.
    let mut _share = None;
    if content_length > 0 {
        // Authorization before the body: without a token, nothing is read (only the API
        // takes bodies).
        if !bearer {
            return client.write_all(
                concat!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n",
                "Content-Type: application/json\r\nContent-Length: 41\r\nConnection: close\r\n\r\n",
                "{\"error\":\"missing or wrong bearer token\"}"
            )
                .as_bytes(),
            );
        }
        _share = BodyShare::take(content_length);
        if _share.is_none() {
            return reply_with(client, "503 Service Unavailable", "Retry-After: 1\r\n");
        }
        if expects_continue {
            client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let want = content_length as usize;
        body.reserve_exact(want.saturating_sub(body.len()));
        let body_deadline = Instant::now() + BODY_DEADLINE;
        if read_until(client, &mut body, body_deadline, &held, |b| b.len() >= want)?.is_none() {
            return reply(client, "408 Request Timeout");
        }
        body.truncate(want);
    } else {
        body.clear();
    }
    // Complete: from now on this connection is never evicted.
    lock(table).settle(id);
    let mut upstream = UnixStream::connect(upstreams.for_request(&method, &target))?;
    upstream.set_write_timeout(Some(Duration::from_secs(10)))?;
    upstream.write_all(&head)?;
    upstream.write_all(&body)?;
    drop(body);
    drop(_share);
    upstream.shutdown(Shutdown::Write)?;
    relay(&mut upstream, client)
}

/// Copies the answer to the client; gives up when the client has gone (its slot is free at
/// once) or after [`UPSTREAM_WAIT`].
fn relay(upstream: &mut UnixStream, client: &mut dyn Conn) -> std::io::Result<()> {
    upstream.set_read_timeout(Some(CLIENT_CHECK))?;
    let until = Instant::now() + UPSTREAM_WAIT;
    let mut chunk = [0u8; 8192];
    let mut first = true;
    loop {
        match upstream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if first => {
                first = false;
                client.write_all(&with_connection_close(&chunk[..n]))?
            }
            Ok(n) => client.write_all(&chunk[..n])?,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if client_left(client.tcp()) || Instant::now() >= until {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    client.flush()
}

/// The answer's first bytes with `Connection: close` after its status line: every connection
/// ends after one request, and a client that was not told so reuses it and loses its next
/// request (Python's http.client did, helper-14). tiny_http does not say it. Bytes without a
/// complete status line pass unchanged.
fn with_connection_close(first: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Some(end) = first.windows(2).position(|w| w == b"\r\n") else {
        return std::borrow::Cow::Borrowed(first);
    };
    let head_end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(first.len());
    let said = first[..head_end]
        .split(|b| *b == b'\n')
        .any(|l| l.to_ascii_lowercase().starts_with(b"connection:"));
    if said {
        return std::borrow::Cow::Borrowed(first);
    }
    let mut out = Vec::with_capacity(first.len() + 19);
    out.extend_from_slice(&first[..end + 2]);
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&first[end + 2..]);
    std::borrow::Cow::Owned(out)
}

/// Whether the client has closed its side (or its connection failed): it sent nothing we
/// wait for, so any readable end-of-stream means it left.
fn client_left(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return true;
    }
    let r = tcp.peek(&mut [0u8; 1]);
    let _ = tcp.set_nonblocking(false);
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::with_connection_close;

    #[test]
    fn answers_say_the_connection_closes() {
        let answer = b"HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            &*with_connection_close(answer),
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: tiny-http (Rust)\r\nContent-Length: 2\r\n\r\nok"[..]
        );
        let said = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n";
        assert_eq!(&*with_connection_close(said), &said[..]);
        // A body that mentions it does not count; a cut status line passes unchanged.
        let body = b"HTTP/1.1 200 OK\r\n\r\nConnection: keep-alive";
        assert!(
            with_connection_close(body).starts_with(b"HTTP/1.1 200 OK\r\nConnection: close\r\n")
        );
        assert_eq!(&*with_connection_close(b"HTTP/1.1 2"), &b"HTTP/1.1 2"[..]);
    }
}
