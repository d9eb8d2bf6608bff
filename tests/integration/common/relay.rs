//! A TCP relay in front of a server that can go silent: its connections
//! stay open, but nothing gets through any more, as with a server that
//! hangs or a network path that drops packets. Or it can be cut: its
//! connections closed and new ones refused, as with a server that is down,
//! until it is restored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running relay; stopped on drop.
pub struct Relay {
    pub addr: SocketAddr,
    silent: Arc<AtomicBool>,
    stop: CancellationToken,
    /// Set while cut; `open` ends the connections of the current period.
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<CancellationToken>>,
}

impl Relay {
    /// From now on, bytes either way are read and dropped.
    pub fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Let bytes through again (what was dropped stays dropped).
    pub fn speak(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }

    /// Close every connection and refuse new ones, until [`Self::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        open.cancel();
        *open = CancellationToken::new();
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Relay loopback connections to `to`.
pub async fn relay(to: SocketAddr) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let (quiet, stopped) = (silent.clone(), stop.clone());
    let cut = Arc::new(AtomicBool::new(false));
    let open = Arc::new(Mutex::new(CancellationToken::new()));
    let (refusing, period) = (cut.clone(), open.clone());
    tokio::spawn(async move {
        loop {
            let client = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((client, _)) => client,
                    Err(_) => continue,
                },
                _ = stopped.cancelled() => return,
            };
            if refusing.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(server) = TcpStream::connect(to).await else {
                continue;
            };
            let ends = period.lock().unwrap().clone();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            for (from, into) in [
                (
                    Box::new(client_read) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    Box::new(server_write) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                ),
                (Box::new(server_read), Box::new(client_write)),
            ] {
                tokio::spawn(pump(
                    from,
                    into,
                    quiet.clone(),
                    stopped.clone(),
                    ends.clone(),
                ));
            }
        }
    });
    Relay {
        addr,
        silent,
        stop,
        cut,
        open,
    }
}

async fn pump(
    mut from: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    mut into: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    silent: Arc<AtomicBool>,
    stop: CancellationToken,
    cut: CancellationToken,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = stop.cancelled() => return,
            _ = cut.cancelled() => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !silent.load(Ordering::SeqCst) && into.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
