//! The storage abstraction against an S3 endpoint (moto's server, started here on loopback): the same
//! guarantees as on the local filesystem — encrypted, content-addressed, atomic, nothing left by a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use endoreg_common::storage::{Identities, Recipients, StorageConfig, Store, keys};

struct Moto(Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is needed for the S3 tests: pip install \"moto[server]\"");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto(child, port)
}

/// Creates a bucket with a bare HTTP request (moto accepts unsigned requests).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_keeps_the_local_guarantees() {
    let moto = start_moto();
    create_bucket(moto.1, "endoreg-media");
    let dir = tempfile::tempdir().unwrap();
    let (key_id, secret) = (dir.path().join("key-id"), dir.path().join("secret"));
    std::fs::write(&key_id, "testing\n").unwrap();
    std::fs::write(&secret, "testing\n").unwrap();
    let cfg = StorageConfig::S3 {
        bucket: "endoreg-media".into(),
        endpoint: Some(format!("http://127.0.0.1:{}", moto.1)),
        region: "us-east-1".into(),
        allow_http: true,
        access_key_id_file: key_id,
        secret_access_key_file: secret,
    };
    let store = Store::open(&cfg, dir.path()).unwrap();
    let (recipients, identities): (Recipients, Identities) = endoreg_common::storage::local_key(&dir.path().join("raw.agekey")).unwrap();

    // 12 MB: more than one multipart part.
    let data: Vec<u8> = (0..12_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut ingest = store.ingest(Some(&recipients), 100_000_000).await.unwrap();
    for chunk in data.chunks(1 << 20) {
        ingest.write(chunk).await.unwrap();
    }
    let done = ingest.finish(keys::raw).await.unwrap();
    assert!(!done.existed);
    assert!(store.get_bytes(&done.key).await.unwrap().starts_with(b"age-encryption.org/v1"));
    let out = dir.path().join("back");
    store.download(&done.key, &out, Some(&identities)).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_eq!(store.list("staging").await.unwrap(), Vec::<String>::new());

    // Again: recognised, not stored twice.
    let mut again = store.ingest(Some(&recipients), 100_000_000).await.unwrap();
    again.write(&data).await.unwrap();
    assert!(again.finish(keys::raw).await.unwrap().existed);
    assert_eq!(store.list("raw").await.unwrap().len(), 1);

    // Too large, or aborted half-way: nothing visible.
    let mut big = store.ingest(None, 5_000_000).await.unwrap();
    big.write(&data[..4_000_000]).await.unwrap();
    assert!(big.write(&data[4_000_000..8_000_000]).await.is_err());
    big.abort().await;
    let mut aborted = store.ingest(None, u64::MAX).await.unwrap();
    aborted.write(&data).await.unwrap();
    aborted.abort().await;
    assert_eq!(store.list("staging").await.unwrap(), Vec::<String>::new());
    assert_eq!(store.list("anonymised").await.unwrap(), Vec::<String>::new());

    // Frames under a prefix can be removed together (a failed extraction's leftovers).
    for i in 0..5 {
        store.put_bytes(&keys::frame("frames/abc/anonymised", i, "jpg"), vec![1, 2, 3]).await.unwrap();
    }
    assert_eq!(store.delete_prefix("frames/abc").await.unwrap(), 5);
    assert!(store.list("frames").await.unwrap().is_empty());
}
