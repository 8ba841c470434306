//! The tiny_http server: two threads calling the blocking `recv`, `unblock()` on shutdown.

use super::gate::Gate;
use super::response::{header, json_bytes_response, json_response};
use super::{api, metrics, snapshot};
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
/// dropped. (Not an abstract name: tiny_http's `Drop` unwraps a path name.)
fn inner_listener() -> std::io::Result<(UnixListener, PathBuf)> {
    use std::os::unix::fs::DirBuilderExt;
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dlms-bridge-{}-{}",
        std::process::id(),
        STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let path = dir.join("http.sock");
    Ok((UnixListener::bind(&path)?, path))
}

impl StatusServer {
    /// Binds `bind` and serves until [`StatusServer::stop`].
    pub fn start(bind: &str, status: Arc<Status>, db: &Path) -> std::io::Result<StatusServer> {
        let (inner, socket) = inner_listener()?;
        let server = Arc::new(
            Server::from_listener(inner, None)
                .map_err(|e| std::io::Error::other(format!("{bind}: {e}")))?,
        );
        let gate = Gate::start(listener(bind)?, socket.clone())?;
        let addr = gate.addr;
        info!("status page on http://{addr}/");
        let mut threads = Vec::new();
        for i in 0..THREADS {
            let (server, status, db) = (server.clone(), status.clone(), db.to_path_buf());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || serve(&server, &status, &db))?,
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

fn serve(server: &Server, status: &Status, db: &Path) {
    let mut store = None;
    while let Ok(request) = server.recv() {
        let response = route(request, status, db, &mut store);
        if let Err(e) = response {
            warn!("status page: {e}");
        }
    }
}

fn route(
    mut request: Request,
    status: &Status,
    db: &Path,
    store: &mut Option<crate::store::Store>,
) -> std::io::Result<()> {
    let url = request.url().split('?').next().unwrap_or("").to_string();
    // HEAD is GET without the body (RFC 9110 9.3.2; tiny_http leaves the body out).
    let method = match request.method() {
        Method::Head => Method::Get,
        m => m.clone(),
    };
    let response = match (&method, url.as_str()) {
        (Method::Get, "/status") => json_bytes_response(200, snapshot::status_document(status)),
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
            .with_header(header(
                "Content-Security-Policy",
                "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            )),
        (_, path) if path == "/api/meters" || path.starts_with("/api/meters/") => {
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.as_str().to_string());
            let mut body = String::new();
            if request.body_length().unwrap_or(0) as u64 > MAX_BODY {
                json_response(413, &serde_json::json!({"error": "request body too large"}))
            } else {
                request
                    .as_reader()
                    .take(MAX_BODY)
                    .read_to_string(&mut body)?;
                if store.is_none() {
                    match crate::store::Store::open(db) {
                        Ok(s) => *store = Some(s),
                        Err(e) => {
                            let r =
                                json_response(500, &serde_json::json!({"error": e.to_string()}));
                            return request.respond(r);
                        }
                    }
                }
                match store.as_mut() {
                    Some(s) => api::handle(s, &method, path, auth.as_deref(), &body),
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
