//! Decoding of ingestion request bodies into records.
//!
//! The official SDKs send records in several encodings, and all of them are accepted:
//! a form field `data=` holding base64 or raw JSON, a `?data=` query parameter (GET), a raw
//! JSON body, NDJSON, each optionally compressed with gzip or deflate. The payload is one JSON
//! object or a list of objects, or NDJSON with one of them per line. `verbose`, `strict`, `ip`
//! and `project_id` are read from the query string or from the form body.

use std::io::Read;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use groupscope::protocol::{Endpoint, MAX_RECORDS_PER_REQUEST};
use serde_json::Value;

use crate::validation::type_name;

/// The request parameters that change how records are handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `verbose=1`: respond with a JSON status object.
    pub verbose: bool,
    /// `strict`, when given.
    pub strict: Option<bool>,
    /// `ip`, when given.
    pub ip: Option<String>,
    /// `project_id`, when given.
    pub project_id: Option<String>,
}

/// A decoded request.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The records, in request order.
    pub records: Vec<Value>,
    /// The parameters.
    pub params: Params,
}

/// An error that stopped a request body from being decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The uncompressed body is larger than the limit.
    #[error("request exceeds max limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request has more records than one request may carry.
    #[error("the request has {count} records; send at most {MAX_RECORDS_PER_REQUEST} per request")]
    TooManyRecords {
        /// The number of records.
        count: usize,
    },
    /// The body is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The `Content-Encoding` is neither gzip, deflate nor identity.
    #[error("unsupported Content-Encoding {0:?}: send the body uncompressed, or compressed with gzip or deflate")]
    UnsupportedEncoding(String),
}

/// The request as received, before decoding.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// The ingestion endpoint.
    pub endpoint: Endpoint,
    /// The query string without `?`.
    pub query: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<&'a str>,
    /// The body as received.
    pub body: &'a [u8],
}

const BASE64: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));
const BASE64_URL_SAFE: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// Decodes a request into records and parameters. `max_bytes` limits the body after gzip
/// decompression.
///
/// # Errors
/// [`DecodeError`] naming what is wrong.
pub fn decode(request: RawRequest<'_>, max_bytes: usize) -> Result<Decoded, DecodeError> {
    let body = uncompress(request, max_bytes)?;
    let content_type = request.content_type.unwrap_or("").to_ascii_lowercase();

    let mut pairs: Vec<(String, String)> = request
        .query
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();

    // A form body starts with a field name, never with `{` or `[`, so such a body is JSON
    // whatever its content type (curl sends x-www-form-urlencoded by default).
    let trimmed = trim_ascii(&body);
    let starts_like_json = trimmed.first().is_some_and(|b| *b == b'{' || *b == b'[');
    let is_json_body = starts_like_json || (content_type.contains("json") && !content_type.contains("x-www-form-urlencoded"));

    let mut payload: Option<Vec<u8>> = None;
    if is_json_body {
        payload = Some(trimmed.to_vec());
    } else if !trimmed.is_empty() {
        let form: Vec<(String, String)> = form_urlencoded::parse(trimmed).into_owned().collect();
        let looks_like_form = trimmed.contains(&b'=') && std::str::from_utf8(trimmed).is_ok();
        if looks_like_form && !form.iter().any(|(name, _)| name == "data") {
            return Err(DecodeError::Malformed(
                "missing data: the form has no `data` field; send records as `data=<JSON or base64 JSON>`".into(),
            ));
        }
        if !looks_like_form {
            return Err(DecodeError::Malformed(format!(
                "the {} body is neither JSON nor a form with a `data` field; send `data=<JSON or base64 JSON>` or a JSON body",
                if content_type.is_empty() { "request".to_owned() } else { format!("{content_type} request") }
            )));
        }
        // Form fields come after the query string so a `data` in the body wins.
        pairs.extend(form);
    }

    let params = read_params(&pairs);
    let payload = match payload {
        Some(payload) => payload,
        None => {
            let data = pairs.iter().rev().find(|(name, _)| name == "data").map(|(_, value)| value.as_str());
            match data {
                Some(data) => decode_data_field(data)?,
                None => {
                    return Err(DecodeError::Malformed(
                        "missing data: send records as a `data=` form field, a `?data=` query parameter or a JSON body".into(),
                    ));
                }
            }
        }
    };
    if payload.len() > max_bytes {
        return Err(DecodeError::TooLarge { limit: max_bytes });
    }

    let records = parse_records(&payload, content_type.contains("ndjson"))?;
    if records.len() > MAX_RECORDS_PER_REQUEST {
        return Err(DecodeError::TooManyRecords { count: records.len() });
    }
    Ok(Decoded { records, params })
}

fn uncompress(request: RawRequest<'_>, max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let encoding = request.content_encoding.map(|encoding| encoding.trim().to_ascii_lowercase()).unwrap_or_default();
    let decoded = match encoding.as_str() {
        "" | "identity" => {
            if request.body.len() > max_bytes {
                return Err(DecodeError::TooLarge { limit: max_bytes });
            }
            return Ok(request.body.to_vec());
        }
        "gzip" | "x-gzip" => read_limited(GzDecoder::new(request.body), max_bytes, "gzip"),
        // HTTP's deflate is the zlib format (RFC 9110), but some clients send raw deflate.
        "deflate" => read_limited(ZlibDecoder::new(request.body), max_bytes, "deflate")
            .or_else(|_| read_limited(DeflateDecoder::new(request.body), max_bytes, "deflate")),
        _ => return Err(DecodeError::UnsupportedEncoding(request.content_encoding.unwrap_or("").trim().to_owned())),
    }?;
    if decoded.len() > max_bytes {
        return Err(DecodeError::TooLarge { limit: max_bytes });
    }
    Ok(decoded)
}

/// Reads at most `max_bytes + 1` bytes, so a larger result shows that the limit was passed.
fn read_limited(decoder: impl Read, max_bytes: usize, encoding: &str) -> Result<Vec<u8>, DecodeError> {
    let mut body = Vec::new();
    decoder.take(max_bytes as u64 + 1).read_to_end(&mut body).map_err(|error| {
        DecodeError::Malformed(format!("the body is marked Content-Encoding: {encoding} but is not valid {encoding}: {error}"))
    })?;
    Ok(body)
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn read_params(pairs: &[(String, String)]) -> Params {
    let last = |name: &str| pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_owned());
    let flag = |value: Option<String>| value.map(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    Params {
        verbose: flag(last("verbose")).unwrap_or(false),
        strict: flag(last("strict")),
        ip: last("ip"),
        project_id: last("project_id"),
    }
}

/// Decodes the text of a `data` field: JSON when it starts with `{` or `[`, base64 otherwise.
fn decode_data_field(data: &str) -> Result<Vec<u8>, DecodeError> {
    let data = data.trim();
    if data.starts_with('{') || data.starts_with('[') {
        return Ok(data.as_bytes().to_vec());
    }
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(&compact)
        .or_else(|_| BASE64_URL_SAFE.decode(&compact))
        .map_err(|error| {
            DecodeError::Malformed(format!(
                "the `data` field is neither JSON nor base64-encoded JSON ({error}); it starts with {:?}",
                compact.chars().take(16).collect::<String>()
            ))
        })
}

/// Parses one JSON value, or NDJSON (one value per line) when the content type is NDJSON or
/// the payload is not one value but has several lines.
fn parse_records(payload: &[u8], ndjson: bool) -> Result<Vec<Value>, DecodeError> {
    let mut json_error = None;
    if !ndjson {
        match serde_json::from_slice::<Value>(payload) {
            Ok(value) => return records_of(value),
            Err(error) if !payload.contains(&b'\n') => {
                return Err(DecodeError::Malformed(format!("the payload is not valid JSON: {error}")));
            }
            Err(error) => json_error = Some(error),
        }
    }

    let mut records = Vec::new();
    for (number, line) in payload.split(|b| *b == b'\n').enumerate() {
        let line = trim_ascii(line);
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            // A first line that is not JSON means the payload is broken JSON, not NDJSON.
            Err(_) if records.is_empty() && json_error.is_some() => {
                let error = json_error.take().map(|e| e.to_string()).unwrap_or_default();
                return Err(DecodeError::Malformed(format!("the payload is not valid JSON: {error}")));
            }
            Err(error) => {
                return Err(DecodeError::Malformed(format!("NDJSON line {} is not valid JSON: {error}", number + 1)));
            }
        };
        records.push(value);
    }
    Ok(records)
}

fn records_of(value: Value) -> Result<Vec<Value>, DecodeError> {
    match value {
        Value::Array(records) => Ok(records),
        Value::Object(_) => Ok(vec![value]),
        other => Err(DecodeError::Malformed(format!(
            "the payload is {}; send one JSON object or a list of objects",
            type_name(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    fn request<'a>(endpoint: Endpoint, query: Option<&'a str>, content_type: Option<&'a str>, body: &'a [u8]) -> RawRequest<'a> {
        RawRequest { endpoint, query, content_type, content_encoding: None, body }
    }

    #[test]
    fn form_with_base64_data() {
        let data = BASE64.encode(br#"[{"event":"a"},{"event":"b"}]"#);
        let body = format!("data={}&verbose=1", form_urlencoded::byte_serialize(data.as_bytes()).collect::<String>());
        let decoded = decode(request(Endpoint::Track, None, Some("application/x-www-form-urlencoded"), body.as_bytes()), 1000).unwrap();
        assert_eq!(decoded.records.len(), 2);
        assert!(decoded.params.verbose);
    }

    #[test]
    fn form_with_raw_json_data_and_query_params() {
        let body = format!("data={}", form_urlencoded::byte_serialize(br#"{"event":"a"}"#).collect::<String>());
        let decoded = decode(request(Endpoint::Track, Some("ip=1&verbose=1"), None, body.as_bytes()), 1000).unwrap();
        assert_eq!(decoded.records, vec![json!({"event": "a"})]);
        assert_eq!(decoded.params.ip.as_deref(), Some("1"));
        assert!(decoded.params.verbose);
    }

    #[test]
    fn get_query_data() {
        let data = BASE64.encode(br#"{"event":"a"}"#);
        let query = format!("data={}", form_urlencoded::byte_serialize(data.as_bytes()).collect::<String>());
        let decoded = decode(request(Endpoint::Track, Some(&query), None, b""), 1000).unwrap();
        assert_eq!(decoded.records.len(), 1);
    }

    #[test]
    fn raw_json_and_gzip() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(br#"[{"event":"a"}]"#).unwrap();
        let body = encoder.finish().unwrap();
        let raw = RawRequest { content_encoding: Some("gzip"), ..request(Endpoint::Track, None, Some("application/json"), &body) };
        assert_eq!(decode(raw, 1000).unwrap().records.len(), 1);
    }

    #[test]
    fn ndjson_import() {
        let body = b"{\"event\":\"a\"}\n\n{\"event\":\"b\"}\n";
        let decoded = decode(request(Endpoint::Import, Some("strict=0"), Some("application/x-ndjson"), body), 1000).unwrap();
        assert_eq!(decoded.records.len(), 2);
        assert_eq!(decoded.params.strict, Some(false));
        let decoded = decode(request(Endpoint::Import, None, None, body), 1000).unwrap();
        assert_eq!(decoded.records.len(), 2);
    }

    #[test]
    fn errors_name_the_problem() {
        let error = decode(request(Endpoint::Track, None, None, b"data=%%%not-base64"), 1000).unwrap_err();
        assert!(error.to_string().contains("neither JSON nor base64"), "{error}");
        let error = decode(request(Endpoint::Track, None, None, b""), 1000).unwrap_err();
        assert!(error.to_string().contains("missing data"), "{error}");
        let error = decode(request(Endpoint::Track, None, Some("application/json"), b"[1,"), 1000).unwrap_err();
        assert!(error.to_string().contains("not valid JSON"), "{error}");
        let error = decode(request(Endpoint::Track, None, None, b"42"), 1000).unwrap_err();
        assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
        let raw = RawRequest { content_encoding: Some("gzip"), ..request(Endpoint::Track, None, None, b"plain") };
        assert!(decode(raw, 1000).unwrap_err().to_string().contains("gzip"));
    }

    #[test]
    fn limits_bytes_and_records() {
        let body = vec![b' '; 2000];
        assert_eq!(decode(request(Endpoint::Track, None, None, &body), 1000).unwrap_err(), DecodeError::TooLarge { limit: 1000 });
        let many = Value::Array(vec![json!({}); 2001]).to_string();
        assert_eq!(
            decode(request(Endpoint::Import, None, None, many.as_bytes()), 1_000_000).unwrap_err(),
            DecodeError::TooManyRecords { count: 2001 }
        );
    }
}
