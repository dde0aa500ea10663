//! SSM parameters and Secrets Manager secrets ([`berth_store::SecretStore`]).

use std::collections::BTreeMap;

use berth_model::secrets::{Parameter, ParameterType, ParameterValue, ParameterVersion, Sealed, Secret, SecretValue, SecretVersion};
use berth_store::StoreError;

use super::Backend;

fn parameter(name: &str, versions: i64) -> Parameter {
    let version = |n: i64| ParameterVersion {
        version: n,
        r#type: ParameterType::SecureString,
        value: ParameterValue::Sealed(Sealed(vec![1, n as u8, 3])),
        key_id: Some("alias/aws/ssm".into()),
        description: None,
        allowed_pattern: None,
        tier: "Standard".into(),
        data_type: "text".into(),
        labels: vec![],
        last_modified_date: 1.0,
        last_modified_user: "root".into(),
    };
    Parameter { name: name.into(), versions: (1..=versions).map(version).collect(), tags: BTreeMap::new() }
}

fn secret(arn: &str, name: &str) -> Secret {
    Secret {
        arn: arn.into(),
        name: name.into(),
        description: None,
        kms_key_id: None,
        tags: vec![],
        created_date: 1.0,
        last_changed_date: 1.0,
        last_accessed_date: None,
        deleted_date: None,
        versions: vec![SecretVersion {
            version_id: "v1".into(),
            value: SecretValue::String(Sealed(vec![9, 9])),
            stages: vec!["AWSCURRENT".into()],
            created_date: 1.0,
        }],
    }
}

pub(crate) async fn parameters_with_versions_and_conflicts(db: Backend) {
    let s = db.store.as_ref();
    assert_eq!(s.put_parameter(&parameter("/app/db", 1), None).await.unwrap().version, 1);
    assert!(matches!(s.put_parameter(&parameter("/app/db", 1), None).await, Err(StoreError::Conflict)));
    assert_eq!(s.put_parameter(&parameter("/app/db", 2), Some(1)).await.unwrap().version, 2);
    assert!(matches!(s.put_parameter(&parameter("/app/db", 3), Some(1)).await, Err(StoreError::Conflict)));
    let got = s.get_parameter("/app/db").await.unwrap().unwrap();
    assert_eq!((got.version, got.value), (2, parameter("/app/db", 2)));
    s.put_parameter(&parameter("/app/B", 1), None).await.unwrap();
    s.put_parameter(&parameter("db", 1), None).await.unwrap();
    let names: Vec<String> = s.list_parameters().await.unwrap().into_iter().map(|v| v.value.name).collect();
    assert_eq!(names, ["/app/B", "/app/db", "db"], "bytewise by name");
    assert!(s.delete_parameter("/app/db").await.unwrap());
    assert!(!s.delete_parameter("/app/db").await.unwrap());
    assert!(s.get_parameter("/app/db").await.unwrap().is_none());
}

pub(crate) async fn secrets_unique_by_arn_and_name(db: Backend) {
    let s = db.store.as_ref();
    s.put_secret(&secret("arn:1", "db"), None).await.unwrap();
    assert!(matches!(s.put_secret(&secret("arn:1", "other"), None).await, Err(StoreError::Conflict)));
    assert!(matches!(s.put_secret(&secret("arn:2", "db"), None).await, Err(StoreError::Conflict)), "a name is one secret's");
    let mut next = secret("arn:1", "db");
    next.description = Some("d".into());
    assert_eq!(s.put_secret(&next, Some(1)).await.unwrap().version, 2);
    assert!(matches!(s.put_secret(&next, Some(1)).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_secret("arn:1").await.unwrap().unwrap().value.description.as_deref(), Some("d"));
    assert_eq!(s.get_secret_by_name("db").await.unwrap().unwrap().value.arn, "arn:1");
    s.put_secret(&secret("arn:0", "api"), None).await.unwrap();
    let names: Vec<String> = s.list_secrets().await.unwrap().into_iter().map(|v| v.value.name).collect();
    assert_eq!(names, ["api", "db"]);
    assert!(s.delete_secret("arn:1").await.unwrap());
    assert!(!s.delete_secret("arn:1").await.unwrap());
    assert!(s.get_secret_by_name("db").await.unwrap().is_none());
    s.put_secret(&secret("arn:3", "db"), None).await.unwrap();
}
