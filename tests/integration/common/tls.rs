//! An HTTPS server for upstream tests: a certificate for `localhost` from a
//! CA of its own (hand [`TlsServer::ca_pem`] to the client as its trust
//! store), HTTP/2 and HTTP/1.1 offered by ALPN, and counts of connections
//! and of requests per HTTP version.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Request;
use axum::http::Version;
use axum::middleware::Next;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running HTTPS server; stopped on drop.
pub struct TlsServer {
    /// `https://localhost:<port>/mcp`.
    pub url: String,
    /// The certificate of the CA that signed the server's.
    pub ca_pem: String,
    connections: Arc<AtomicUsize>,
    http2: Arc<AtomicUsize>,
    http1: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TlsServer {
    /// TLS connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests received over HTTP/2 and over HTTP/1.x so far.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.http2.load(Ordering::SeqCst),
            self.http1.load(Ordering::SeqCst),
        )
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A server certificate for `localhost` and `127.0.0.1` from a CA of its
/// own, as a rustls server configuration and the CA's certificate.
pub fn certified() -> (rustls::ServerConfig, String) {
    super::install_crypto();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certificate = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.der().clone()], key)
        .unwrap();
    (config, ca.pem())
}

/// Serve `router` over TLS on a free loopback port until `stop`.
pub async fn serve(router: axum::Router, stop: CancellationToken) -> TlsServer {
    let (mut config, ca_pem) = certified();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let (http2, http1) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
    let counts = (http2.clone(), http1.clone());
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let counter = match request.version() {
                Version::HTTP_2 => &counts.0,
                _ => &counts.1,
            };
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::<AtomicUsize>::default();
    let counted = connections.clone();
    let stopped = stop.clone();
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => continue,
                },
                _ = stopped.cancelled() => return,
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsServer {
        url: format!("https://localhost:{port}/mcp"),
        ca_pem,
        connections,
        http2,
        http1,
        stop,
    }
}
