//! `resolve` against a real store (SQLite in a temp dir): parameters and
//! secrets sealed as the API seals them, every valueFrom form, ECS's
//! reasons, and no clear value in the database file.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;

use berth_model::Account;
use berth_model::secrets::{
    Parameter, ParameterType, ParameterValue, ParameterVersion, Secret, SecretValue, SecretVersion, secret_arn,
};
use berth_secrets::{Aad, Cipher, resolve};
use berth_store::Store;

const CLEAR: &str = "s3cr3t-clear-value-7781";

fn account() -> Account {
    Account { region: "us-east-1".into(), account_id: "123456789012".into() }
}

fn version(n: i64, r#type: ParameterType, value: ParameterValue, labels: &[&str]) -> ParameterVersion {
    ParameterVersion {
        version: n,
        r#type,
        value,
        key_id: None,
        description: None,
        allowed_pattern: None,
        tier: "Standard".into(),
        data_type: "text".into(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        last_modified_date: 0.0,
        last_modified_user: "root".into(),
    }
}

async fn seed(store: &dyn Store, cipher: &Cipher) -> String {
    let name = "/app/db";
    let sealed = |n: i64, v: &str| ParameterValue::Sealed(cipher.seal(&Aad::parameter(name, n), v.as_bytes()));
    let p = Parameter {
        name: name.into(),
        versions: vec![
            version(1, ParameterType::SecureString, sealed(1, "old-value-4471"), &["prod"]),
            version(2, ParameterType::SecureString, sealed(2, CLEAR), &[]),
        ],
        tags: BTreeMap::new(),
    };
    store.put_parameter(&p, None).await.unwrap();
    let plain = Parameter {
        name: "plain".into(),
        versions: vec![version(1, ParameterType::String, ParameterValue::Plain("hello".into()), &[])],
        tags: BTreeMap::new(),
    };
    store.put_parameter(&plain, None).await.unwrap();

    let arn = secret_arn("us-east-1", "123456789012", "db", [1, 2, 3, 4, 5, 6]);
    let body = format!(r#"{{"username":"admin","password":"{CLEAR}"}}"#);
    let mut s = Secret {
        arn: arn.clone(),
        name: "db".into(),
        description: None,
        kms_key_id: None,
        tags: vec![],
        created_date: 0.0,
        last_changed_date: 0.0,
        last_accessed_date: None,
        deleted_date: None,
        versions: vec![],
    };
    for (id, text) in [("v1", r#"{"password":"first-v1-9913"}"#), ("v2", body.as_str())] {
        let value = SecretValue::String(cipher.seal(&Aad::secret(&arn, id), text.as_bytes()));
        s.add_version(SecretVersion { version_id: id.into(), value, stages: vec![], created_date: 0.0 });
    }
    store.put_secret(&s, None).await.unwrap();
    arn
}

#[tokio::test]
async fn every_value_from_form_resolves_and_nothing_is_clear_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("berth.db");
    let store = berth_store::open(&format!("sqlite://{}", db.display())).await.unwrap().records;
    let cipher = Cipher::load_or_create(dir.path()).unwrap();
    let arn = seed(store.as_ref(), &cipher).await;
    let a = account();
    let get = |v: String| {
        let (store, cipher, a) = (store.clone(), &cipher, &a);
        async move { resolve(store.as_ref(), cipher, a, &v).await.map(|r| (r.value.to_string(), r.resource_arn)) }
    };

    let param_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db".to_owned();
    assert_eq!(get("/app/db".into()).await.unwrap(), (CLEAR.to_owned(), param_arn.clone()));
    assert_eq!(get(param_arn.clone()).await.unwrap().0, CLEAR);
    assert_eq!(get("/app/db:1".into()).await.unwrap().0, "old-value-4471");
    assert_eq!(get("/app/db:prod".into()).await.unwrap().0, "old-value-4471");
    assert_eq!(get("plain".into()).await.unwrap().0, "hello");

    assert_eq!(get(arn.clone()).await.unwrap(), (format!(r#"{{"username":"admin","password":"{CLEAR}"}}"#), arn.clone()));
    assert_eq!(get(format!("{arn}:password::")).await.unwrap().0, CLEAR);
    assert_eq!(get(format!("{arn}:password:AWSPREVIOUS:")).await.unwrap().0, "first-v1-9913");
    assert_eq!(get(format!("{arn}:password::v1")).await.unwrap().0, "first-v1-9913");
    // Without the random suffix (a partial ARN): the same secret.
    let partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db";
    assert_eq!(get(format!("{partial}:username::")).await.unwrap(), ("admin".to_owned(), arn.clone()));

    let e = get("/app/missing".into()).await.unwrap_err().to_string();
    assert!(e.ends_with("unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: /app/missing"), "{e}");
    assert!(e.starts_with("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "));
    let e = get("/app/db:9".into()).await.unwrap_err().to_string();
    assert!(e.ends_with("invalid ssm parameters: /app/db:9"), "{e}");
    let gone = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AAAAAA";
    let e = get(gone.into()).await.unwrap_err().to_string();
    assert!(
        e.ends_with(&format!(
            "unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {gone} \
             from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret."
        )),
        "{e}"
    );
    let e = get(format!("{arn}:nokey::")).await.unwrap_err().to_string();
    assert!(e.ends_with("retrieved secret from Secrets Manager did not contain json key nokey"), "{e}");
    let e = get(format!("{arn}::NOSTAGE:")).await.unwrap_err().to_string();
    assert!(e.contains("ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: NOSTAGE"), "{e}");

    // A value sealed under another key cannot be read, and says so without details.
    let other = Cipher::ephemeral();
    let e = resolve(store.as_ref(), &other, &a, "/app/db").await.unwrap_err();
    assert!(e.to_string().ends_with("InternalServerError: the value could not be read"), "{e}");
    assert!(!format!("{e:?}").contains(CLEAR));

    // The database (and its WAL) holds no clear value.
    drop(store);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for needle in [CLEAR, "old-value-4471", "first-v1-9913"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in clear in {}", path.display());
        }
    }
}
