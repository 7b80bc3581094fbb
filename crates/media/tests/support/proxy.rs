//! A TCP proxy in front of a registry on loopback that a test takes down and brings back: the registry
//! outage a worker meets, without stopping the registry. It can go down by itself the moment a request
//! containing a given text passes (that request then never reaches the registry), and while down it
//! closes every connection, the pooled ones included, as soon as anything is sent on them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    down: AtomicBool,
    /// Going down when a request containing this passes.
    trap: Mutex<Option<Vec<u8>>>,
    /// Requests that met a closed door (the trapped one included).
    refused: AtomicUsize,
}

pub struct Proxy {
    pub url: String,
    state: Arc<State>,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target` (an `http://host:port` URL) on a port of its own.
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target.trim_start_matches("http://").trim_end_matches('/').parse().expect("http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, target, s.clone()));
            }
        });
        Proxy { url, state, _task: task }
    }

    /// Goes down as soon as a request containing `needle` (e.g. `/complete HTTP/1.1`) passes; that request
    /// is not forwarded.
    pub fn down_at(&self, needle: &str) {
        *self.state.trap.lock().unwrap() = Some(needle.as_bytes().to_vec());
    }

    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.state.down.load(Ordering::SeqCst)
    }

    /// Requests refused so far.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, state: Arc<State>) {
    let mut first = vec![0u8; 64 * 1024];
    // Nothing is forwarded until the client sends: a connection opened while up but used while down is
    // refused then.
    let mut window = Vec::new();
    let Ok(n) = client.read(&mut first).await else { return };
    if n == 0 || refuse(&state, &first[..n], &mut window) {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    if server.write_all(&first[..n]).await.is_err() {
        return;
    }
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let upstream = {
        let state = state.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if refuse(&state, &buf[..n], &mut window) || sw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    // Either side ending ends the connection (dropping both halves closes it).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// Whether `chunk` (following `window`, the connection's last bytes) must not pass: the proxy is down, or
/// the chunk completes the trap's text, which takes the proxy down.
fn refuse(state: &State, chunk: &[u8], window: &mut Vec<u8>) -> bool {
    if state.down.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    window.extend_from_slice(chunk);
    let mut trap = state.trap.lock().unwrap();
    if trap.as_ref().is_some_and(|needle| window.windows(needle.len()).any(|w| w == needle.as_slice())) {
        *trap = None;
        state.down.store(true, Ordering::SeqCst);
        state.refused.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    // What a text split across two reads needs.
    let cut = window.len().saturating_sub(trap.as_ref().map_or(0, Vec::len));
    window.drain(..cut);
    false
}
