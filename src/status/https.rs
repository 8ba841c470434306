//! HTTPS for the status page and API (`http.tls_cert`, `http.tls_key`): the gate terminates
//! TLS with OpenSSL (the library paho-mqtt already links for mqtts), so tiny_http and every
//! route stay as they are. Builds without the `tls` feature refuse the settings clearly.

use std::io::{Read, Write};
use std::net::TcpStream;

/// A client connection as the gate serves it: plain TCP or TLS over it.
pub trait Conn: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
    /// Ends the connection (TLS: close_notify first).
    fn close(&mut self);
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(feature = "tls")]
pub use with_tls::{acceptor, Acceptor};

#[cfg(feature = "tls")]
mod with_tls {
    use super::Conn;
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslStream};
    use std::net::TcpStream;
    use std::sync::Arc;

    pub type Acceptor = Arc<SslAcceptor>;

    impl Conn for SslStream<TcpStream> {
        fn tcp(&self) -> &TcpStream {
            self.get_ref()
        }

        fn close(&mut self) {
            let _ = self.shutdown();
            let _ = self.get_ref().shutdown(std::net::Shutdown::Both);
        }
    }

    /// The acceptor for a certificate chain and key (PEM files); `None` for plain HTTP.
    pub fn acceptor(cert: &str, key: &str) -> Result<Option<Acceptor>, String> {
        match (cert.is_empty(), key.is_empty()) {
            (true, true) => return Ok(None),
            (false, true) | (true, false) => {
                return Err(
                    "http.tls_cert and http.tls_key go together: set both or neither".into(),
                )
            }
            _ => {}
        }
        // Mozilla's "intermediate" profile: TLS 1.2 and 1.3, forward-secret ciphers only.
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())
            .map_err(|e| format!("TLS: {e}"))?;
        b.set_certificate_chain_file(cert)
            .map_err(|e| format!("http.tls_cert {cert}: {e}"))?;
        b.set_private_key_file(key, SslFiletype::PEM)
            .map_err(|e| format!("http.tls_key {key}: {e}"))?;
        b.check_private_key()
            .map_err(|e| format!("http.tls_key {key} does not match http.tls_cert {cert}: {e}"))?;
        Ok(Some(Arc::new(b.build())))
    }

    /// The TLS handshake (within the read time-out the caller set on the socket).
    pub fn accept(acceptor: &Acceptor, tcp: TcpStream) -> Option<Box<dyn Conn>> {
        acceptor
            .accept(tcp)
            .ok()
            .map(|s| Box::new(s) as Box<dyn Conn>)
    }
}

#[cfg(not(feature = "tls"))]
pub type Acceptor = std::convert::Infallible;

#[cfg(not(feature = "tls"))]
pub fn acceptor(cert: &str, key: &str) -> Result<Option<Acceptor>, String> {
    if cert.is_empty() && key.is_empty() {
        Ok(None)
    } else {
        Err("http.tls_cert is set but this build has no TLS (build with the tls feature); the page is not served in plain HTTP instead".into())
    }
}

/// The connection the gate serves: TLS when an acceptor is configured.
pub fn wrap(acceptor: Option<&Acceptor>, tcp: TcpStream) -> Option<Box<dyn Conn>> {
    match acceptor {
        None => Some(Box::new(tcp)),
        #[cfg(feature = "tls")]
        Some(a) => with_tls::accept(a, tcp),
        #[cfg(not(feature = "tls"))]
        Some(a) => match *a {},
    }
}
