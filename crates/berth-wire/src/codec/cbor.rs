//! Smithy RPC v2 CBOR's own forms for two kinds of value in *answers*:
//! a timestamp is tag 1 around epoch seconds (an integer when whole, a
//! float when fractional) and a blob is a byte string. The wire shapes
//! hold them as `f64` and base64 text, as AWS JSON writes them; the
//! generated modules of services that speak CBOR mark such members with
//! these `serialize_with` functions, which write the CBOR forms to a
//! binary serializer (ciborium's is not human-readable) and the JSON forms
//! to a text one (serde_json's is). Requests are read through the JSON
//! data model (`berth-api`'s `protocol::cbor_to_json`), which already maps
//! both back.

use serde::Serialize as _;
use serde::ser::{Error as _, SerializeSeq as _, Serializer};

fn one_timestamp<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        return s.serialize_f64(v);
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        ciborium::tag::Required::<i64, 1>(v as i64).serialize(s)
    } else {
        ciborium::tag::Required::<f64, 1>(v).serialize(s)
    }
}

fn one_blob<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    if s.is_human_readable() {
        return s.serialize_str(v);
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(v).map_err(|e| S::Error::custom(format!("a blob that is not base64: {e}")))?;
    s.serialize_bytes(&bytes)
}

struct Ts(f64);
impl serde::Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        one_timestamp(self.0, s)
    }
}

struct Blob<'a>(&'a str);
impl serde::Serialize for Blob<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        one_blob(self.0, s)
    }
}

fn seq<S: Serializer, T: serde::Serialize>(items: impl ExactSizeIterator<Item = T>, s: S) -> Result<S::Ok, S::Error> {
    let mut out = s.serialize_seq(Some(items.len()))?;
    for i in items {
        out.serialize_element(&i)?;
    }
    out.end()
}

/// A required timestamp member.
pub fn timestamp<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    one_timestamp(*v, s)
}

/// An optional timestamp member (`None` is skipped by the struct).
#[allow(clippy::ref_option)]
pub fn timestamp_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&Ts(*v)),
        None => s.serialize_none(),
    }
}

/// A required list of timestamps.
pub fn timestamp_list<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    seq(v.iter().map(|t| Ts(*t)), s)
}

/// An optional list of timestamps.
#[allow(clippy::ref_option)]
pub fn timestamp_list_opt<S: Serializer>(v: &Option<Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&TsList(v)),
        None => s.serialize_none(),
    }
}

struct TsList<'a>(&'a [f64]);
impl serde::Serialize for TsList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        timestamp_list(self.0, s)
    }
}

/// A required blob member.
pub fn blob<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    one_blob(v, s)
}

/// An optional blob member.
#[allow(clippy::ref_option)]
pub fn blob_opt<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&Blob(v)),
        None => s.serialize_none(),
    }
}

/// A required list of blobs.
pub fn blob_list<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    seq(v.iter().map(|b| Blob(b)), s)
}

/// An optional list of blobs.
#[allow(clippy::ref_option)]
pub fn blob_list_opt<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&BlobList(v)),
        None => s.serialize_none(),
    }
}

struct BlobList<'a>(&'a [String]);
impl serde::Serialize for BlobList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        blob_list(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use ciborium::Value;

    /// A shape with a timestamp and a blob, marked as the generator marks
    /// such members in a CBOR service's module.
    #[derive(serde::Serialize)]
    struct Shape {
        #[serde(rename = "When", serialize_with = "super::timestamp")]
        when: f64,
        #[serde(rename = "Later", default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp_opt")]
        later: Option<f64>,
        #[serde(rename = "Times", default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp_list_opt")]
        times: Option<Vec<f64>>,
        #[serde(rename = "Data", default, skip_serializing_if = "Option::is_none", serialize_with = "super::blob_opt")]
        data: Option<String>,
        #[serde(rename = "Parts", serialize_with = "super::blob_list")]
        parts: Vec<String>,
    }

    fn shape() -> Shape {
        Shape {
            when: 1_704_164_645.0,
            later: Some(1_704_164_645.25),
            times: Some(vec![1.0, 2.5]),
            data: Some("aGVsbG8=".into()),
            parts: vec!["AAE=".into()],
        }
    }

    fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
        v.as_map().unwrap().iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v).unwrap()
    }

    #[test]
    fn cbor_answers_carry_tag_1_timestamps_and_byte_string_blobs() {
        let mut buf = Vec::new();
        ciborium::into_writer(&shape(), &mut buf).unwrap();
        // Decoded by a real CBOR decoder, not by our own writer's inverse.
        let v: Value = ciborium::from_reader(&buf[..]).unwrap();
        assert_eq!(get(&v, "When"), &Value::Tag(1, Box::new(Value::Integer(1_704_164_645.into()))), "whole seconds: an integer");
        assert_eq!(get(&v, "Later"), &Value::Tag(1, Box::new(Value::Float(1_704_164_645.25))), "fractional: a float");
        assert_eq!(
            get(&v, "Times"),
            &Value::Array(vec![Value::Tag(1, Box::new(Value::Integer(1.into()))), Value::Tag(1, Box::new(Value::Float(2.5)))])
        );
        assert_eq!(get(&v, "Data"), &Value::Bytes(b"hello".to_vec()));
        assert_eq!(get(&v, "Parts"), &Value::Array(vec![Value::Bytes(vec![0, 1])]));
        // The first bytes of "When": text key, then tag 1 (0xc1), then a 4-byte unsigned integer.
        let at = buf.windows(4).position(|w| w == b"When").unwrap() + 4;
        assert_eq!(&buf[at..at + 2], &[0xc1, 0x1a]);
    }

    #[test]
    fn json_answers_keep_epoch_numbers_and_base64_text() {
        let v = serde_json::to_value(shape()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"When": 1_704_164_645.0, "Later": 1_704_164_645.25, "Times": [1.0, 2.5], "Data": "aGVsbG8=", "Parts": ["AAE="]})
        );
    }

    /// CloudWatch answers as the generated module marks them
    /// (`GetMetricData`'s timestamps, `GetMetricWidgetImage`'s blob), kept
    /// as fixtures that tests/compat/test_protocols.py decodes with
    /// botocore's own rpc-v2-cbor parser. `BERTH_BLESS=1` rewrites them.
    #[derive(serde::Serialize)]
    struct MetricDataResult {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Timestamps", serialize_with = "super::timestamp_list")]
        timestamps: Vec<f64>,
        #[serde(rename = "Values")]
        values: Vec<f64>,
    }

    #[derive(serde::Serialize)]
    struct GetMetricDataOutput {
        #[serde(rename = "MetricDataResults")]
        metric_data_results: Vec<MetricDataResult>,
    }

    #[derive(serde::Serialize)]
    struct GetMetricWidgetImageOutput {
        #[serde(rename = "MetricWidgetImage", serialize_with = "super::blob")]
        metric_widget_image: String,
    }

    fn fixture(name: &str, value: &impl serde::Serialize) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let mut buf = Vec::new();
        ciborium::into_writer(value, &mut buf).unwrap();
        if std::env::var_os("BERTH_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &buf).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), buf, "{} is not what the encoder writes (BERTH_BLESS=1 rewrites it)", path.display());
    }

    #[test]
    fn cloudwatch_answers_match_the_fixtures_botocore_reads() {
        fixture(
            "cbor-get-metric-data.cbor",
            &GetMetricDataOutput {
                metric_data_results: vec![MetricDataResult {
                    id: "m1".into(),
                    timestamps: vec![1_704_164_645.0, 1_704_164_705.5],
                    values: vec![1.0, 2.0],
                }],
            },
        );
        fixture("cbor-get-metric-widget-image.cbor", &GetMetricWidgetImageOutput { metric_widget_image: "iVBORw0KGgo=".into() });
    }

    #[test]
    fn a_blob_that_is_not_base64_is_an_error_not_a_panic() {
        let s = Shape { data: Some("%%%".into()), ..shape() };
        assert!(ciborium::into_writer(&s, &mut Vec::new()).is_err());
    }
}
