//! Image uploads (`PUT /berth/images/import|load`) through the router:
//! the signature is checked before the body is read, against the hash
//! the client claims, and a body that does not hash to it is refused.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use berth_api::{Api, ApiConfig, router};
use berth_model::Account;
use berth_store::AccessKey;
use berth_testinfra::registry::{LayerBuilder, tar_of_dir};
use berth_testinfra::sign::{Creds, SignOptions, sign_with};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

const AKID: &str = "AKIDUPLOADTEST000001";
const SECRET: &str = "upload-test-secret";

async fn api(dir: &std::path::Path) -> Api {
    let stores = berth_store::open(&format!("sqlite://{}", dir.join("t.db").display())).await.unwrap();
    let store = stores.records.clone();
    store
        .insert_access_key(&AccessKey { access_key_id: AKID.into(), secret_access_key: SECRET.into(), created_at: 0 })
        .await
        .unwrap();
    let images = berth_image::ImageStore::open(dir.join("images"), berth_image::ImageStoreConfig::default()).unwrap();
    let account = Account { region: "us-east-1".into(), account_id: "123456789012".into() };
    Api::new(stores, ApiConfig::new(account)).with_images(Arc::new(images))
}

fn upload(path: &str, body: Vec<u8>, sign: bool) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder()
        .method("PUT")
        .uri(format!("http://berth.test{path}"))
        .header("host", "berth.test")
        .body(body)
        .unwrap();
    if sign {
        let creds = Creds { access_key_id: AKID.into(), secret_access_key: SECRET.into() };
        let options = SignOptions { content_sha256_header: true, ..Default::default() };
        sign_with(&mut req, &creds, "us-east-1", "berth", SystemTime::now(), &options).unwrap();
    }
    req
}

async fn send(api: &Api, req: http::Request<Vec<u8>>) -> (u16, Value) {
    let resp = router(api.clone()).oneshot(req.map(Body::from)).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn rootfs_tar(dir: &std::path::Path) -> Vec<u8> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hello"), "hi\n").unwrap();
    tar_of_dir(&root).unwrap()
}

#[tokio::test]
async fn a_signed_upload_imports_and_a_tampered_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path()).await;
    let tar = rootfs_tar(dir.path());

    let (status, v) = send(&api, upload("/berth/images/import?name=local/up:1", tar.clone(), true)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["images"][0]["source"], "import");
    assert!(v["images"][0]["reference"].as_str().unwrap().ends_with("local/up:1"), "{v}");

    // Signed for one body, sent with another: the claim is signed, the body is not it.
    let mut req = upload("/berth/images/import?name=local/up:2", tar.clone(), true);
    *req.body_mut() = LayerBuilder::new().file("etc/other", b"x", 0o644).build();
    let (status, v) = send(&api, req).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("XAmzContentSHA256Mismatch")), "{v}");

    // No signature: refused before the body is read.
    let (status, v) = send(&api, upload("/berth/images/load", tar.clone(), false)).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("MissingAuthenticationTokenException")), "{v}");

    // Import needs a name; garbage is a clear error.
    let (status, v) = send(&api, upload("/berth/images/import", tar.clone(), true)).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidParameterException")), "{v}");
    let (status, v) = send(&api, upload("/berth/images/load", b"not a tarball".to_vec(), true)).await;
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidParameterException")), "{v}");
}
