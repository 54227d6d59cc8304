//! A loopback TCP relay to the app that a test can cut and restore, as a
//! phone loses and finds its network: cut, it closes every open connection
//! and refuses new ones, so the page and its service worker alike meet a
//! real network failure.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Relay {
    pub address: SocketAddr,
    up: Arc<watch::Sender<bool>>,
}

impl Relay {
    /// A relay to `target`, up.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the relay");
        let address = listener.local_addr().expect("the relay's address");
        let (up, _) = watch::channel(true);
        let up = Arc::new(up);
        let state = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut watching = state.subscribe();
                if !*watching.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watching.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { address, up }
    }

    /// Cuts the network (`false`) or gives it back (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}
