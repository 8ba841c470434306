//! The tiny_http server: two threads calling the blocking `recv`, `unblock()` on shutdown.

use super::gate::Gate;
use super::response::{header, json_bytes_response, json_response};
use super::sign_in::SignInLimiter;
use super::{admin, api, gate, metrics, snapshot};
use crate::status::state::Status;
use log::{info, warn};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Method, Request, Response, Server};

const THREADS: usize = 2;
/// The largest request body accepted (meter imports are small).
const MAX_BODY: u64 = 1 << 20;
const DASHBOARD: &str = include_str!("dashboard.html");

pub struct StatusServer {
    server: Arc<Server>,
    gate: Gate,
    socket: PathBuf,
    threads: Vec<JoinHandle<()>>,
    pub addr: std::net::SocketAddr,
}

/// tiny_http listens on a private Unix socket behind the gate (`gate.rs`), in a directory of
/// its own (mode 0700) under the temporary directory; tiny_http removes the socket when it is
/// dropped. (Not an abstract name: tiny_http's `Drop` unwraps a path name.) The name is random:
/// a directory left by a killed process of another user with our pid (pids are reused) cannot
/// be removed by us and would otherwise keep the page from starting.
fn inner_listener() -> std::io::Result<(UnixListener, PathBuf)> {
    use std::os::unix::fs::DirBuilderExt;
    remove_stale_socket_dirs();
    let mut last = None;
    for _ in 0..8 {
        let suffix = crate::client::entropy::random_bytes::<6>("the status page's socket name")?;
        let dir = std::env::temp_dir().join(format!(
            "dlms-bridge-{}-{}",
            std::process::id(),
            crate::hex::encode(&suffix).to_ascii_lowercase()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let path = dir.join("http.sock");
                return Ok((UnixListener::bind(&path)?, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no name for the page's socket")))
}

/// Socket directories of bridges that were killed (`kill -9`, power loss without a tmpfs):
/// removed where nothing answers on their socket any more and they are ours to remove (a
/// live bridge, in this PID namespace or another sharing /tmp, answers; another user's stay).
fn remove_stale_socket_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("dlms-bridge-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        // A minute old at least: a bridge starting now has made its directory but not yet
        // its socket.
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 60));
        if pid != std::process::id()
            && old
            && std::os::unix::net::UnixStream::connect(dir.join("http.sock")).is_err()
        {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

impl StatusServer {
    /// Binds `bind` and serves until [`StatusServer::stop`].
    pub fn start(bind: &str, status: Arc<Status>, db: &Path) -> std::io::Result<StatusServer> {
        let settings = crate::store::Store::open(db)
            .and_then(|s| s.settings())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tls = super::https::acceptor(&settings.http_tls_cert, &settings.http_tls_key)
            .map_err(std::io::Error::other)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (inner, socket) = inner_listener()?;
        let server = Arc::new(
            Server::from_listener(inner, None)
                .map_err(|e| std::io::Error::other(format!("{bind}: {e}")))?,
        );
        let gate = Gate::start(listener(bind)?, socket.clone(), tls)?;
        let addr = gate.addr;
        info!("status page on {scheme}://{addr}/");
        let mut threads = Vec::new();
        let limiter = Arc::new(std::sync::Mutex::new(SignInLimiter::default()));
        for i in 0..THREADS {
            let (server, status, db) = (server.clone(), status.clone(), db.to_path_buf());
            let limiter = limiter.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        let shared = Shared {
                            status: &status,
                            db: &db,
                            limiter: &limiter,
                        };
                        serve(&server, &shared)
                    })?,
            );
        }
        Ok(StatusServer {
            server,
            gate,
            socket,
            threads,
            addr,
        })
    }

    pub fn stop(self) {
        self.gate.stop();
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
        drop(self.server);
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A listening socket with TCP_NODELAY, which Linux passes on to accepted connections:
/// tiny_http writes headers and body separately, and with Nagle's algorithm the body waited
/// for the delayed ACK of the headers (40 ms per response; measured in docs/benchmarks.md).
fn listener(bind: &str) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = bind.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{bind}: not ADDRESS:PORT"),
        )
    })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// What both request threads share.
struct Shared<'a> {
    status: &'a Status,
    db: &'a Path,
    limiter: &'a std::sync::Mutex<SignInLimiter>,
}

fn serve(server: &Server, shared: &Shared) {
    let mut store = None;
    while let Ok(request) = server.recv() {
        let response = route(request, shared, &mut store);
        if let Err(e) = response {
            warn!("status page: {e}");
        }
    }
}

fn header_value(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

fn route(
    mut request: Request,
    shared: &Shared,
    store: &mut Option<crate::store::Store>,
) -> std::io::Result<()> {
    let status = shared.status;
    let (url, query) = match request.url().split_once('?') {
        Some((u, q)) => (u.to_string(), q.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    // HEAD is GET without the body (RFC 9110 9.3.2; tiny_http leaves the body out).
    let method = match request.method() {
        Method::Head => Method::Get,
        m => m.clone(),
    };
    let response = match (&method, url.as_str()) {
        (Method::Get, "/status") => json_bytes_response(200, snapshot::status_document(status)),
        (Method::Get, path) if path.starts_with("/status/meters/") && path.ends_with("/history") => {
            admin::history(status, path)
        }
        (Method::Get, "/metrics") => Response::from_string(metrics::render(status))
            .with_header(header("Content-Type", "text/plain; version=0.0.4"))
            .with_chunked_threshold(usize::MAX),
        (Method::Get, "/healthz") => match snapshot::health(
            status,
            status
                .max_unsent_age_s
                .load(std::sync::atomic::Ordering::Relaxed),
        ) {
            Ok(()) => Response::from_string("ok\n").with_status_code(200),
            Err(why) => Response::from_string(format!("unhealthy: {why}\n")).with_status_code(503),
        },
        (Method::Get, "/") => Response::from_string(DASHBOARD)
            .with_header(header("Content-Type", "text/html; charset=utf-8"))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Frame-Options", "DENY"))
            .with_header(header("Referrer-Policy", "no-referrer"))
            .with_header(header(
                "Content-Security-Policy",
                "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            )),
        (_, path) if path.starts_with("/api/") => {
            let auth = header_value(&request, "Authorization");
            // Set by the gate (any such header from the client was removed there).
            let client = header_value(&request, gate::PEER_HEADER).unwrap_or_else(|| "unknown".into());
            let mut body = String::new();
            if request.body_length().unwrap_or(0) as u64 > MAX_BODY {
                json_response(413, &serde_json::json!({"error": "request body too large"}))
            } else {
                request
                    .as_reader()
                    .take(MAX_BODY)
                    .read_to_string(&mut body)?;
                if store.is_none() {
                    match crate::store::Store::open(shared.db) {
                        Ok(s) => *store = Some(s),
                        Err(e) => {
                            let r =
                                json_response(500, &serde_json::json!({"error": e.to_string()}));
                            return request.respond(r);
                        }
                    }
                }
                match store.as_mut() {
                    Some(s) => match api::authorize(s, auth.as_deref(), &client, shared.limiter) {
                        Err(refused) => refused,
                        Ok(()) => {
                            let call = admin::Call {
                                method: &method,
                                path,
                                query: &query,
                                body: &body,
                                client: &client,
                            };
                            api_route(s, status, &call)
                        }
                    },
                    None => json_response(500, &serde_json::json!({"error": "no database"})),
                }
            }
        }
        _ => json_response(
            404,
            &serde_json::json!({"error": format!("no route {method} {url}")}),
        ),
    };
    request.respond(response)
}

fn api_route(
    store: &mut crate::store::Store,
    status: &Status,
    call: &admin::Call,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let (method, path) = (call.method, call.path);
    match path {
        "/api/logs" if *method == Method::Get => admin::logs(call.query),
        "/api/scan" if *method == Method::Post => admin::scan(call.body),
        p if p == "/api/alarms" || p.starts_with("/api/alarms/") => admin::alarms(status, call),
        p if p == "/api/meters" || p.starts_with("/api/meters/") => {
            api::meters(store, method, path, call.body)
        }
        _ => json_response(
            404,
            &serde_json::json!({"error": format!("no route {method} {path}")}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_directories_go_fresh_and_live_ones_stay() {
        let tmp = std::env::temp_dir();
        let stale = tmp.join("dlms-bridge-4000000000-stale");
        let fresh = tmp.join("dlms-bridge-4000000001-fresh");
        let foreign = tmp.join("dlms-bridge-e2e-not-a-socket-dir");
        for d in [&stale, &fresh, &foreign] {
            std::fs::create_dir_all(d).unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for d in [&stale, &foreign] {
            std::fs::File::open(d)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        // Another process's bridge (another pid), old but answering on its socket.
        let live_dir = tmp.join("dlms-bridge-4000000002-live");
        std::fs::create_dir_all(&live_dir).unwrap();
        let live = UnixListener::bind(live_dir.join("http.sock")).unwrap();
        std::fs::File::open(&live_dir)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        remove_stale_socket_dirs();
        assert!(!stale.exists(), "a stale directory stays");
        assert!(fresh.exists() && foreign.exists() && live_dir.exists());
        drop(live);
        for d in [&fresh, &foreign, &live_dir] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
