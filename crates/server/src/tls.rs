//! HTTPS served by the server itself (`server.tls`): rustls, with the certificate chain and the
//! private key of two PEM files. Handshakes run beside the accept loop, each bounded in time
//! and in number, so that a slow or silent client delays no one.

use axum::serve::Listener;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The longest a client may take to finish its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The most handshakes under way at once; more connections wait to be accepted.
const HANDSHAKES_AT_ONCE: usize = 1024;

/// A listener whose connections arrive with their TLS handshake done.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// TLS on `listener` with the certificate chain of `cert_file` and the key of `key_file`
    /// (PEM); why not, naming the file (never its content), when they cannot be used.
    pub fn new(listener: TcpListener, cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let config = server_config(cert_file, key_file)?;
        let local = listener
            .local_addr()
            .map_err(|error| format!("the address listened on: {error}"))?;
        let (sender, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let accepting = tokio::spawn(accept_forever(listener, acceptor, sender));
        Ok(Self {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop is gone only once this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// rustls's configuration for the two files: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1.
fn server_config(cert_file: &Path, key_file: &Path) -> Result<rustls::ServerConfig, String> {
    let unreadable = |setting: &str, file: &Path, error: &dyn std::fmt::Display| {
        format!("server.tls.{setting} {}: {error}", file.display())
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect)
        .map_err(|e| unreadable("cert-file", cert_file, &e))?;
    if chain.is_empty() {
        return Err(unreadable(
            "cert-file",
            cert_file,
            &"no PEM certificate in it",
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| unreadable("key-file", key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("server.tls: the key does not go with the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts connections and hands each one over once its handshake is done.
async fn accept_forever(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(HANDSHAKES_AT_ONCE));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (tcp, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: a pause, not a stop.
                crate::log::warn(&format!("accept a connection: {error}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            // A failed or slow handshake is the client's problem: it is dropped.
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                let _ = ready.send((tls, address)).await;
            }
        });
    }
}
