//! Single-image prediction over HTTP for annotation tools: the same preprocessing as videos (the
//! processor's crop), tokens checked by the real registry, clear errors for bad requests, and `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use endoreg_common::access::Role;
use endoreg_common::api::TokenCreate;
use endoreg_common::secret::Secret;
use endoreg_inference::http::{HttpState, router};
use endoreg_inference::service::{ImagePrediction, Service, load_model};
use endoreg_inference::telemetry::Gpus;
use endoreg_media::client::Client;
use endoreg_registry::config::RegistryConfig;
use endoreg_registry::db::{ConnectOptions, Db};

struct Servers {
    inference: String,
    token: String,
    service: Arc<Service>,
    _dir: tempfile::TempDir,
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn servers() -> Servers {
    servers_with(|_| {}).await
}

async fn servers_with(tweak: impl FnOnce(&mut endoreg_inference::config::InferenceConfig)) -> Servers {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Db::connect(&format!("sqlite://{}", data.join("registry.db").display()), &ConnectOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    endoreg_registry::kb::load(&db, &endoreg_registry::kb::ours::Files::builtin()).await.unwrap();
    let create = |name: &str, role| TokenCreate { name: name.into(), role, expires_in_days: None };
    let service_token = endoreg_registry::service::tokens::create(&db, &create("inference", Role::Service)).await.unwrap();
    let annotator = endoreg_registry::service::tokens::create(&db, &create("annotation-tool", Role::Annotator)).await.unwrap();
    let registry =
        serve(endoreg_registry::http::router(db, &RegistryConfig { data_dir: data.clone(), ..RegistryConfig::default() }).unwrap()).await;

    let mut cfg = common::config(&data);
    cfg.registry_url = registry.clone();
    cfg.http.max_image_bytes = 2 * 1024 * 1024;
    tweak(&mut cfg);
    let model = load_model(&cfg).unwrap();
    let service = Arc::new(Service::new(model, cfg, Gpus::none()));
    let client = Client::new(&registry, Secret::new(service_token.token)).unwrap();
    let inference = serve(router(Arc::new(HttpState::new(service.clone(), Some(client))))).await;
    Servers { inference, token: annotator.token, service, _dir: dir }
}

/// A `w`×`h` PNG: `outer` everywhere, `inner` in the Olympus CV-1500 endoscope region (scaled to w×h).
fn png(w: u32, h: u32, outer: [u8; 3], inner: [u8; 3]) -> Vec<u8> {
    let (sx, sy) = (f64::from(w) / 1920.0, f64::from(h) / 1080.0);
    let (x0, x1) = ((580.0 * sx) as u32, (1900.0 * sx) as u32);
    let (y0, y1) = ((30.0 * sy) as u32, (1050.0 * sy) as u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(if (x0..x1).contains(&x) && (y0..y1).contains(&y) { inner } else { outer }));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn probability(p: &ImagePrediction, label: &str) -> f32 {
    p.labels.iter().find(|l| l.label == label).map(|l| l.probability).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_predicted_with_the_processors_crop() {
    let s = servers().await;
    let http = reqwest::Client::new();
    let predict =
        |query: &str, body: Vec<u8>| http.post(format!("{}/api/v1/predict{query}", s.inference)).bearer_auth(&s.token).body(body).send();
    // Bright grey around an NBI-coloured (green-blue) endoscope image.
    let picture = png(960, 540, [235, 232, 228], [40, 150, 130]);

    // Cropped to the processor's endoscope image: NBI, not outside.
    let res = predict("?processor=olympus_cv_1500", picture.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let p: ImagePrediction = res.json().await.unwrap();
    assert_eq!((p.model.as_str(), p.crop.as_str(), p.labels.len()), ("colonoscopy_multilabel_classifier", "endoscope_image", 14));
    assert!(probability(&p, "nbi") > 0.9 && probability(&p, "outside") < 0.1, "{p:?}");
    assert!(p.labels.iter().find(|l| l.label == "nbi").unwrap().present);

    // A bright, colourless picture taken as the endoscope image already: outside.
    let res = predict("", png(300, 200, [230, 228, 225], [230, 228, 225])).await.unwrap();
    let p: ImagePrediction = res.json().await.unwrap();
    assert_eq!(p.crop, "none");
    assert!(probability(&p, "outside") > 0.9 && probability(&p, "nbi") < 0.1, "{p:?}");

    // JPEG works as PNG does.
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(200, 200, image::Rgb([230, 228, 225]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let p: ImagePrediction = predict("", jpeg).await.unwrap().json().await.unwrap();
    assert!(probability(&p, "outside") > 0.9, "{p:?}");

    // The model's description.
    let m: serde_json::Value =
        http.get(format!("{}/api/v1/model", s.inference)).bearer_auth(&s.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["labels"].as_array().unwrap().len(), 14);
    assert_eq!(m["provider"], "cpu");

    // Three images went through the model; no GPU, so no GPU metrics.
    let metrics = http.get(format!("{}/metrics", s.inference)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("endoreg_inference_frames_total 3"), "{metrics}");
    assert!(metrics.contains("endoreg_inference_model_info{"), "{metrics}");
    assert!(!metrics.contains("endoreg_gpu_"), "{metrics}");
    assert_eq!(http.get(format!("{}/healthz", s.inference)).send().await.unwrap().text().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_problem_naming_what_is_wrong() {
    let s = servers().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/predict", s.inference);
    let problem = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        assert_eq!(res.headers()[reqwest::header::CONTENT_TYPE], "application/problem+json", "status {status}");
        let body: serde_json::Value = res.json().await.unwrap();
        (status, body["detail"].as_str().unwrap_or_default().to_owned())
    };
    let image = png(64, 64, [0, 0, 0], [200, 90, 90]);

    let res = http.post(&url).body(image.clone()).send().await.unwrap();
    assert!(res.headers().contains_key(reqwest::header::WWW_AUTHENTICATE));
    let (status, detail) = problem(res).await;
    assert_eq!(status, 401);
    assert!(detail.contains("Authorization: Bearer"), "{detail}");

    let (status, detail) = problem(http.post(&url).bearer_auth("not-a-token").body(image.clone()).send().await.unwrap()).await;
    assert_eq!((status, detail.contains("does not know this token")), (401, true), "{detail}");

    let send = |query: &'static str, body: Vec<u8>| http.post(format!("{url}{query}")).bearer_auth(&s.token).body(body).send();
    let (status, detail) = problem(send("", b"GIF89a this is not an image we read".to_vec()).await.unwrap()).await;
    assert_eq!((status, detail.contains("cannot be read")), (422, true), "{detail}");

    let (status, detail) = problem(send("", Vec::new()).await.unwrap()).await;
    assert_eq!((status, detail.contains("send the image")), (400, true), "{detail}");

    let (status, detail) = problem(send("?processor=no_such_processor", image.clone()).await.unwrap()).await;
    assert_eq!((status, detail.contains("no_such_processor")), (404, true), "{detail}");

    // A name that would walk the registry's URL space (`../tokens/self`) is not looked up.
    let (status, detail) = problem(send("?processor=..%2F..%2Ftokens%2Fself", image.clone()).await.unwrap()).await;
    assert_eq!((status, detail.contains("processor's name")), (400, true), "{detail}");

    let (status, detail) = problem(send("?colour=blue", image.clone()).await.unwrap()).await;
    assert_eq!((status, detail.contains("colour")), (400, true), "{detail}");

    // A 64x64 picture is not the Olympus CV-1500's 16:9.
    let (status, detail) = problem(send("?processor=olympus_cv_1500", image).await.unwrap()).await;
    assert_eq!((status, detail.contains("olympus_cv_1500")), (422, true), "{detail}");

    let (status, detail) = problem(send("", vec![0u8; 3 * 1024 * 1024]).await.unwrap()).await;
    assert_eq!((status, detail.contains("max_image_bytes")), (413, true), "{detail}");
}

/// Beyond `http.max_concurrent_images` predictions in flight a request is turned away with 503 at once
/// instead of queueing decoded images without bound; the one in flight is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // held on purpose: the request in flight must wait at the model
async fn predictions_beyond_the_limit_are_turned_away() {
    let s = servers_with(|cfg| cfg.http.max_concurrent_images = 1).await;
    let http = reqwest::Client::new();
    let send = || {
        http.post(format!("{}/api/v1/predict", s.inference))
            .bearer_auth(&s.token)
            .body(png(320, 180, [230, 228, 225], [40, 150, 130]))
            .send()
    };
    // The model held here: whichever request takes the only permit waits at the model with it.
    let model = s.service.model.lock().unwrap();
    let (mut first, mut second) = (tokio::spawn(send()), tokio::spawn(send()));
    let (res, waiting) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::select! {
            r = &mut first => (r, second),
            r = &mut second => (r, first),
        }
    })
    .await
    .expect("neither request was turned away while the other held the only permit");
    let res = res.unwrap().unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("max_concurrent_images"), "{body}");
    assert!(!waiting.is_finished(), "the request in flight waits for the model");
    drop(model);
    let res = waiting.await.unwrap().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The permit came back: the next one is served.
    assert_eq!(send().await.unwrap().status().as_u16(), 200);
}
