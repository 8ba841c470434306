//! The front gate of the status page: bounds what one client can cost before tiny_http sees it.
//!
//! tiny_http accepts without limit (a thread and two descriptors per connection), buffers a
//! request head of any length, and ends its accept loop for good on the first accept error
//! (EMFILE at the open-file limit). So the public TCP port is ours: this gate accepts, refuses
//! past [`MAX_CONNECTIONS`] with a 503 (no thread spent), reads the request head within
//! [`MAX_HEAD`] bytes and [`HEAD_DEADLINE`], forces `Connection: close`, and passes the request
//! to tiny_http over a private Unix socket, then copies the answer back. An accept error is
//! logged and retried: the listener survives running out of descriptors.

use super::https::{Acceptor, Conn};
pub use crate::http_head::{parse_head, Head, MAX_HEAD, PEER_HEADER};
use log::warn;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// The time a client has to send its request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The largest request body passed on (meter imports are small).
pub const MAX_BODY: u64 = 1 << 20;
/// Per-connection threads only copy bytes (and, with HTTPS, run OpenSSL's handshake).
const STACK: usize = 128 * 1024;
/// How long the gate waits for tiny_http's answer (a scan from the page takes a while).
const UPSTREAM_WAIT: Duration = Duration::from_secs(120);

pub struct Gate {
    stop: Arc<AtomicBool>,
    pub addr: std::net::SocketAddr,
}

impl Gate {
    /// Serves `listener` (HTTPS with `tls`), passing requests to the Unix socket at `inner`.
    pub fn start(
        listener: TcpListener,
        inner: PathBuf,
        tls: Option<Acceptor>,
    ) -> std::io::Result<Gate> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let active = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("http-gate".into())
            .spawn(move || accept_loop(&listener, &inner, tls.as_ref(), &active, &s))?;
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
    inner: &Path,
    tls: Option<&Acceptor>,
    active: &Arc<AtomicUsize>,
    stop: &AtomicBool,
) {
    let mut last_warning: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let (mut client, peer) = match listener.accept() {
            Ok((c, a)) => (c, a.ip().to_string()),
            Err(e) => {
                // EMFILE/ENFILE and the like: keep listening, slower, and say so now and then.
                if last_warning.map_or(true, |t| t.elapsed() >= Duration::from_secs(60)) {
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
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            if tls.is_some() {
                // No thread for a handshake: closed.
                continue;
            }
            let _ = client.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (a, path, tls) = (active.clone(), inner.to_path_buf(), tls.cloned());
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(STACK)
            .spawn(move || {
                // The handshake, too, within the head's deadline.
                let _ = client.set_read_timeout(Some(HEAD_DEADLINE));
                let _ = client.set_write_timeout(Some(Duration::from_secs(10)));
                if let Some(mut conn) = super::https::wrap(tls.as_ref(), client) {
                    let _ = serve(conn.as_mut(), &peer, &path);
                    conn.close();
                }
                a.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn reply(client: &mut dyn Conn, status: &str) -> std::io::Result<()> {
    client.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn serve(client: &mut dyn Conn, peer: &str, inner: &Path) -> std::io::Result<()> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head = loop {
        if let Some(h) = parse_head(&buf, peer) {
            break h;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return reply(client, "408 Request Timeout");
        }
        client.tcp().set_read_timeout(Some(left))?;
        match client.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return reply(client, "408 Request Timeout")
            }
            Err(e) => return Err(e),
        }
    };
    let (head, content_length, extra) = match head {
        Head::Complete {
            head,
            content_length,
            extra,
        } => (head, content_length, extra),
        Head::TooLarge => return reply(client, "431 Request Header Fields Too Large"),
        Head::Malformed => return reply(client, "400 Bad Request"),
    };
    if content_length > MAX_BODY {
        return reply(client, "413 Content Too Large");
    }
    let mut upstream = UnixStream::connect(inner)?;
    upstream.set_read_timeout(Some(UPSTREAM_WAIT))?;
    upstream.set_write_timeout(Some(Duration::from_secs(10)))?;
    upstream.write_all(&head)?;
    // The body: what came with the head, then the rest, exactly Content-Length bytes.
    let first = extra.len().min(content_length as usize);
    upstream.write_all(&extra[..first])?;
    let mut rest = content_length - first as u64;
    client
        .tcp()
        .set_read_timeout(Some(Duration::from_secs(10)))?;
    while rest > 0 {
        let n = client.read(&mut chunk[..(rest.min(2048) as usize)])?;
        if n == 0 {
            break;
        }
        upstream.write_all(&chunk[..n])?;
        rest -= n as u64;
    }
    std::io::copy(&mut upstream, client)?;
    client.flush()?;
    Ok(())
}
