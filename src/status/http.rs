//! The tiny_http servers: two threads for the page and API and one for the probes, calling
//! the blocking `recv`, `unblock()` on shutdown.

use super::gate::Gate;
use super::response::{header, json_bytes_response, json_response};
use super::sign_in::SignInLimiter;
use super::{admin, api, diagnostics, gate, metrics, snapshot};
use crate::status::state::Status;
use log::{info, warn};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Method, Request, Response, Server};

/// Request threads of the page and API (one more serves /healthz and /metrics alone).
const THREADS: usize = 2;
/// The largest request body accepted (the gate refuses larger ones before they reach here).
const MAX_BODY: u64 = gate::MAX_BODY;
const DASHBOARD: &str = include_str!("dashboard.html");

pub struct StatusServer {
    server: Arc<Server>,
    probe_server: Arc<Server>,
    gate: Gate,
    dir: PathBuf,
    threads: Vec<JoinHandle<()>>,
    pub addr: std::net::SocketAddr,
}

/// The names of the page's sockets, and of the file that marks their directory as ours.
const MAIN_SOCKET: &str = "http.sock";
const PROBES_SOCKET: &str = "probes.sock";
const MARKER: &str = "dlms-bridge-page";
/// Longest Unix socket path (sun_path holds 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 100;

/// tiny_http listens on private Unix sockets behind the gate (`gate.rs`), in a directory of
/// its own (mode 0700): `$RUNTIME_DIRECTORY/page` under systemd, else beside the database
/// (`bridge.db.page/`), which the run lock makes this process's alone; a temporary directory
/// only when that path is too long for a socket. (Not abstract names: tiny_http's `Drop`
/// unwraps a path name.)
fn socket_dir(db: &Path) -> PathBuf {
    let preferred = match std::env::var_os("RUNTIME_DIRECTORY") {
        Some(d) if !d.is_empty() => {
            // systemd may list several, separated by colons: the first.
            let first = d
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            PathBuf::from(first).join("page")
        }
        _ => {
            let mut name = db.file_name().unwrap_or_default().to_os_string();
            name.push(".page");
            db.with_file_name(name)
        }
    };
    // Absolute: the gate connects from its own threads (std::path::absolute needs Rust 1.79).
    let absolute = if preferred.is_absolute() {
        preferred
    } else {
        std::env::current_dir().map_or(preferred.clone(), |d| d.join(&preferred))
    };
    if absolute.join(PROBES_SOCKET).as_os_str().len() <= MAX_SOCKET_PATH {
        absolute
    } else {
        std::env::temp_dir().join(format!("dlms-bridge-{}-page", std::process::id()))
    }
}

/// Makes `dir` (0700, with our marker) and binds the two sockets in it. What a killed bridge
/// left there is removed first, but only what the bridge can prove it made: its marker and
/// sockets nobody answers on; anything else in the directory makes it refuse.
fn inner_listeners(dir: &Path) -> std::io::Result<(UnixListener, UnixListener)> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() && !remove_if_ours(dir) {
        return Err(std::io::Error::other(format!(
            "{} holds files that are not the status page's sockets, or a live page answers there: not touched; remove it or set http.bind to another port",
            dir.display()
        )));
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::write(dir.join(MARKER), format!("{}\n", std::process::id()))?;
    let main = UnixListener::bind(dir.join(MAIN_SOCKET))?;
    let probes = UnixListener::bind(dir.join(PROBES_SOCKET))?;
    Ok((main, probes))
}

/// Removes `dir` if every entry is our marker or one of our sockets with nobody answering on
/// it; `false` (and nothing removed) otherwise.
fn remove_if_ours(dir: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            return false;
        };
        let is_socket = kind.is_socket() && (name == MAIN_SOCKET || name == PROBES_SOCKET);
        let is_marker = kind.is_file() && name == MARKER;
        if !(is_socket || is_marker) {
            return false;
        }
        if is_socket && std::os::unix::net::UnixStream::connect(entry.path()).is_ok() {
            return false;
        }
        ours.push(entry.path());
    }
    ours.iter().all(|p| std::fs::remove_file(p).is_ok()) && std::fs::remove_dir(dir).is_ok()
}

/// Socket directories an older version left in the temporary directory
/// (`dlms-bridge-<pid>-<random>/http.sock`), removed under the same rule.
fn remove_stale_socket_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with("dlms-bridge-"))
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && entry.path().join(MAIN_SOCKET).exists()
        {
            remove_if_ours(&entry.path());
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
        remove_stale_socket_dirs();
        let dir = socket_dir(db);
        let (main, probes) = inner_listeners(&dir)?;
        let upstreams = gate::Upstreams {
            main: dir.join(MAIN_SOCKET),
            probes: dir.join(PROBES_SOCKET),
        };
        let server = Arc::new(
            Server::from_listener(main, None)
                .map_err(|e| std::io::Error::other(format!("{bind}: {e}")))?,
        );
        let probe_server = Arc::new(
            Server::from_listener(probes, None)
                .map_err(|e| std::io::Error::other(format!("{bind}: {e}")))?,
        );
        let gate = Gate::start(listener(bind)?, upstreams, tls)?;
        let addr = gate.addr;
        info!("status page on {scheme}://{addr}/");
        let mut threads = Vec::new();
        let limiter = Arc::new(std::sync::Mutex::new(SignInLimiter::default()));
        // Thread 0 serves only the probes (/healthz, /metrics); the others everything.
        let servers = std::iter::once(probe_server.clone())
            .chain(std::iter::repeat_n(server.clone(), THREADS));
        for (i, server) in servers.enumerate() {
            let (status, db) = (status.clone(), db.to_path_buf());
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
            probe_server,
            gate,
            dir,
            threads,
            addr,
        })
    }

    pub fn stop(self) {
        self.gate.stop();
        self.probe_server.unblock();
        for _ in 1..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
        // tiny_http removes its socket files when dropped.
        drop(self.server);
        drop(self.probe_server);
        let _ = std::fs::remove_file(self.dir.join(MARKER));
        let _ = std::fs::remove_dir(&self.dir);
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
            if store.is_none() {
                match crate::store::Store::open(shared.db) {
                    Ok(s) => *store = Some(s),
                    Err(e) => {
                        let r = json_response(500, &serde_json::json!({"error": e.to_string()}));
                        return request.respond(r);
                    }
                }
            }
            match store.as_mut() {
                // Authorized before the body is read (the gate has it whole already, and
                // reads none for a request without a bearer token).
                Some(s) => match api::authorize(s, auth.as_deref(), &client, shared.limiter) {
                    Err(refused) => refused,
                    Ok(()) if request.body_length().unwrap_or(0) as u64 > MAX_BODY => {
                        json_response(413, &serde_json::json!({"error": "request body too large"}))
                    }
                    Ok(()) => {
                        let mut body = String::new();
                        request
                            .as_reader()
                            .take(MAX_BODY)
                            .read_to_string(&mut body)?;
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
        "/api/scan" if *method == Method::Post => admin::scan(store, call.body),
        p if p == "/api/alarms" || p.starts_with("/api/alarms/") => admin::alarms(status, call),
        "/api/decode" if *method == Method::Post => diagnostics::decode(call.body),
        p if *method == Method::Get && diagnostics::trace_of(p).is_some() => {
            let name = diagnostics::trace_of(p).unwrap_or_default();
            diagnostics::trace(store, status, &api::percent_decode(name))
        }
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

    /// Issue 24 item 9: only what the bridge can prove it made is removed; a user's
    /// directories that merely share the prefix keep every file.
    #[test]
    fn only_dead_socket_directories_of_ours_are_removed() {
        let tmp = std::env::temp_dir();
        let tag = std::process::id();
        let stale = tmp.join(format!("dlms-bridge-{tag}-stale-test"));
        let live = tmp.join(format!("dlms-bridge-{tag}-live-test"));
        let notes = tmp.join(format!("dlms-bridge-{tag}-notes-test"));
        let exports = tmp.join(format!("dlms-bridge-{tag}-exports-test"));
        for d in [&stale, &live, &notes, &exports] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).unwrap();
        }
        // A killed bridge's: a socket nobody answers on, and the marker.
        drop(UnixListener::bind(stale.join(MAIN_SOCKET)).unwrap());
        std::fs::write(stale.join(MARKER), "1\n").unwrap();
        let _answering = UnixListener::bind(live.join(MAIN_SOCKET)).unwrap();
        drop(UnixListener::bind(notes.join(MAIN_SOCKET)).unwrap());
        std::fs::write(notes.join("notes.txt"), "mine").unwrap();
        std::fs::write(exports.join("meters-backup.json"), "{}").unwrap();
        remove_stale_socket_dirs();
        let survived = (
            live.exists(),
            notes.join("notes.txt").exists(),
            exports.join("meters-backup.json").exists(),
        );
        let stale_gone = !stale.exists();
        for d in [&stale, &live, &notes, &exports] {
            let _ = std::fs::remove_dir_all(d);
        }
        assert!(stale_gone, "a dead socket directory of ours stays");
        assert_eq!(survived, (true, true, true));
    }

    #[test]
    fn the_sockets_live_beside_the_database() {
        let dir = socket_dir(Path::new("/var/lib/dlms-bridge/bridge.db"));
        if std::env::var_os("RUNTIME_DIRECTORY").is_none() {
            assert_eq!(dir, Path::new("/var/lib/dlms-bridge/bridge.db.page"));
        }
        let long = format!("/{}/bridge.db", "x".repeat(120));
        assert!(socket_dir(Path::new(&long)).starts_with(std::env::temp_dir()));
    }
}
