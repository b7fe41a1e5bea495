//! A TCP proxy on a loopback port whose target can be switched and whose
//! connections can all be dropped at once: what an ElastiCache failover looks
//! like from a client (the endpoint's DNS name moves to the promoted replica
//! and the old connections break).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A proxy from its own port to a target port on 127.0.0.1; stops when
/// dropped.
pub struct TcpProxy {
    port: u16,
    target: Arc<AtomicU16>,
    /// Bumped to drop every connection made before.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let target = Arc::new(AtomicU16::new(target));
        let (generation, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, target.clone(), generation.clone()));
        Self {
            port,
            target,
            generation,
            task,
        }
    }

    /// The proxy's own port (what clients connect to).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends new connections to `127.0.0.1:target` and breaks every open
    /// one, as a failover does.
    pub fn fail_over_to(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        self.generation.send_modify(|generation| *generation += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|generation| *generation += 1);
    }
}

async fn accept(listener: TcpListener, target: Arc<AtomicU16>, generation: watch::Sender<u64>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let address = SocketAddr::from(([127, 0, 0, 1], target.load(Ordering::SeqCst)));
        let mut dropped = generation.subscribe();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(address).await else {
                return;
            };
            dropped.mark_unchanged();
            tokio::select! {
                _ = copy_bidirectional(&mut client, &mut server) => {}
                _ = dropped.changed() => {}
            }
        });
    }
}
