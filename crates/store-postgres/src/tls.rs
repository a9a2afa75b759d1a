//! TLS to PostgreSQL, as the URL's `sslmode` asks: `disable` (never), `prefer` (the default:
//! when the server offers it) or `require`. Whenever TLS is used the server's certificate is
//! verified against the system's roots and Mozilla's (webpki), so `require` means what libpq
//! calls `verify-full`.

use kestrel_store::StoreError;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector every connection of the pool uses.
pub fn connector() -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::backend("configure TLS", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
