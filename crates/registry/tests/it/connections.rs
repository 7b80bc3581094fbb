//! The server's handling of connections, over real sockets on loopback: clients that never finish their
//! headers, too many connections from one address, a body that stops arriving, a graceful stop. The
//! timeouts are configured short; the tests wait on the socket, with a bound far above them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use endoreg_common::access::Role;
use endoreg_registry::config::RegistryConfig;

use crate::support::{Backend, TestApp};

/// Far above every timeout these tests configure: reaching it means the server kept a connection open.
const BOUND: Duration = Duration::from_secs(15);

struct Served {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<()>,
    app: TestApp,
}

async fn serve(adjust: impl FnOnce(&mut RegistryConfig)) -> Served {
    let app = TestApp::with_config(Backend::Sqlite, adjust).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (router, http) = (app.router.clone(), app.config.http.clone());
    let server = tokio::spawn(async move {
        endoreg_registry::server::serve_on(listener, router, &http, async {
            let _ = stopped.await;
        })
        .await;
    });
    Served { addr, stop: Some(stop), server, app }
}

/// Everything the server sends until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> String {
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    let out = tokio::time::timeout(BOUND, read).await.unwrap_or_else(|_| panic!("the server kept the connection open for {BOUND:?}"));
    String::from_utf8_lossy(&out).into_owned()
}

/// One response on a connection that stays open: the status and the body (by its Content-Length).
async fn response(stream: &mut TcpStream) -> (u16, String) {
    let read = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let length: usize =
                    head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse().unwrap()).unwrap_or(0);
                if data.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    return (status, String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned());
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server closed the connection before it answered: {}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BOUND, read).await.unwrap_or_else(|_| panic!("no answer within {BOUND:?}"))
}

async fn healthz(stream: &mut TcpStream) -> (u16, String) {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n").await.unwrap();
    response(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_headers_are_closed() {
    let s = serve(|c| c.http.header_read_timeout_secs = 1).await;
    // Silent, and headers begun but never ended: both are closed once the header read timeout passes.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Slow: ").await.unwrap();
    until_closed(&mut silent).await;
    until_closed(&mut partial).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "closed after {:?}, before the timeout", started.elapsed());
    // A client that sends its request is served, and its kept-alive connection serves another.
    let mut prompt = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut prompt).await, (200, "ok".into()));
    assert_eq!(healthz(&mut prompt).await, (200, "ok".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_holds_a_limited_number_of_connections() {
    let s = serve(|c| {
        c.http.max_connections_per_client = 3;
        c.http.header_read_timeout_secs = 60;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        assert_eq!(healthz(&mut c).await.0, 200);
        held.push(c);
    }
    // The fourth is answered 429 and closed at once.
    let mut fourth = TcpStream::connect(s.addr).await.unwrap();
    let answer = until_closed(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("too_many_connections") && answer.contains("max_connections_per_client"), "{answer}");
    // Those held still work; once one closes, its place is free again.
    assert_eq!(healthz(&mut held[1]).await.0, 200);
    drop(held.remove(0));
    let deadline = Instant::now() + BOUND;
    loop {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = until_closed(&mut c).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 429") && Instant::now() < deadline, "{answer}");
        // The server frees the place when it sees the close; ask again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_answered_408() {
    let s = serve(|c| {
        c.http.body_read_timeout_secs = 1;
        c.http.request_timeout_secs = 60;
    })
    .await;
    let token = &s.app.tokens[&Role::Admin];
    for (path, content_type, start) in [
        ("/api/v1/patients", "application/json".to_owned(), "{\"center\": ".to_owned()),
        (
            "/api/v1/uploads",
            "multipart/form-data; boundary=XB".to_owned(),
            "--XB\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"center\": ".to_owned(),
        ),
    ] {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(start.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (status, body) = response(&mut c).await;
        assert_eq!(status, 408, "{path}: {body}");
        assert!(body.contains("request_timeout") && body.contains("body_read_timeout_secs"), "{path}: {body}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path}: answered after {:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_finishes_requests_in_progress_and_closes_idle_connections() {
    let mut s = serve(|_| {}).await;
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut idle).await.0, 200);
    // A request whose body is still arriving when the stop comes.
    let body = serde_json::json!({"center": "demo_center", "gender": "female", "birth_year": 1961}).to_string();
    let (first, rest) = body.split_at(10);
    let mut busy = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/patients HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        s.app.tokens[&Role::Admin],
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    // Connections are accepted in order: once a later one is answered, the server holds this one.
    let mut later = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(healthz(&mut later).await.0, 200);
    s.stop.take().unwrap().send(()).unwrap();
    // The idle connection is closed; the one in progress gets its answer.
    until_closed(&mut idle).await;
    busy.write_all(rest.as_bytes()).await.unwrap();
    let (status, answer) = response(&mut busy).await;
    assert_eq!(status, 201, "{answer}");
    tokio::time::timeout(BOUND, &mut s.server).await.expect("the server stops once its requests are done").unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err(), "the server still accepts connections after its stop");
}
