//! Provider-published signature vectors (tests/fixtures/signature-vectors.json)
//! are accepted exactly, and rejected when any one byte of body, secret,
//! timestamp or signature changes. The GitHub payload fixtures' real
//! `X-Hub-Signature-256` headers verify too.

use std::path::PathBuf;

use hookroom::clock::ManualClock;
use hookroom::verify::{GithubVerifier, SlackVerifier, StandardWebhooksVerifier, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Vector {
    scheme: String,
    secret: Vec<u8>,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    now: i64,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(fixtures().join("signature-vectors.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            scheme: v["scheme"].as_str().unwrap().to_owned(),
            secret: v["secret"].as_str().unwrap().as_bytes().to_vec(),
            body: v["body"].as_str().unwrap().as_bytes().to_vec(),
            headers: v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            now: v["now_unix"].as_i64().unwrap_or(0),
        })
        .collect()
}

fn verifier(scheme: &str, secret: &[u8], now: i64) -> Option<Box<dyn Verifier>> {
    let clock = ManualClock::at_unix(now);
    Some(match scheme {
        "github" => Box::new(GithubVerifier::new(
            hookroom::verify::Secrets::try_from(secret).unwrap(),
        )),
        "slack-v0" => Box::new(
            SlackVerifier::new(hookroom::verify::Secrets::try_from(secret).unwrap())
                .with_clock(clock),
        ),
        "standard-webhooks" => {
            // A changed secret may no longer be valid base64: that is a
            // rejection at configuration time.
            let secret = std::str::from_utf8(secret).ok()?;
            Box::new(
                StandardWebhooksVerifier::new(hookroom::verify::Secrets::try_from(secret).unwrap())
                    .ok()?
                    .with_clock(clock),
            )
        }
        other => panic!("no verifier for scheme {other}"),
    })
}

fn header_map(headers: &[(String, String)]) -> HeaderMap {
    headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn is_timestamp(name: &str) -> bool {
    name.to_ascii_lowercase().contains("timestamp")
}

#[test]
fn every_vector_is_accepted_exactly() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 3, "fixture changed: review this test");
    for v in &vectors {
        let verifier = verifier(&v.scheme, &v.secret, v.now).unwrap();
        assert_eq!(
            verifier.verify(&header_map(&v.headers), &v.body),
            Ok(hookroom::verify::dangerous::assume_verified(0)),
            "{}",
            v.scheme
        );
    }
}

#[test]
fn every_vector_is_rejected_after_any_one_byte_change() {
    for v in vectors() {
        let headers = header_map(&v.headers);
        let verifier = verifier(&v.scheme, &v.secret, v.now).unwrap();

        for i in 0..v.body.len() {
            let mut body = v.body.clone();
            body[i] ^= 0x01;
            assert!(
                verifier.verify(&headers, &body).is_err(),
                "{} body byte {i}",
                v.scheme
            );
        }
        let mut longer = v.body.clone();
        longer.push(b' ');
        assert!(verifier.verify(&headers, &longer).is_err());
        assert!(
            verifier
                .verify(&headers, &v.body[..v.body.len() - 1])
                .is_err()
        );

        for i in 0..v.secret.len() {
            let mut secret = v.secret.clone();
            secret[i] ^= 0x01;
            // A changed Standard Webhooks secret may no longer be base64:
            // then it is refused when the verifier is built.
            if let Some(changed) = self::verifier(&v.scheme, &secret, v.now) {
                assert!(
                    changed.verify(&headers, &v.body).is_err(),
                    "{} secret byte {i}",
                    v.scheme
                );
            }
        }

        let mut changed_headers = 0;
        for (index, (name, value)) in v.headers.iter().enumerate() {
            let signed = is_timestamp(name) || name.to_ascii_lowercase().contains("signature");
            if !signed && !name.eq_ignore_ascii_case("webhook-id") {
                continue;
            }
            for i in 0..value.len() {
                let mut bytes = value.as_bytes().to_vec();
                bytes[i] ^= 0x01;
                let Ok(new_value) = HeaderValue::from_bytes(&bytes) else {
                    continue;
                };
                let mut headers = header_map(&v.headers);
                headers.insert(
                    HeaderName::from_bytes(v.headers[index].0.as_bytes()).unwrap(),
                    new_value,
                );
                assert!(
                    verifier.verify(&headers, &v.body).is_err(),
                    "{} header {name} byte {i}",
                    v.scheme
                );
                changed_headers += 1;
            }
        }
        assert!(
            changed_headers > 60,
            "{}: only {changed_headers} header changes",
            v.scheme
        );
    }
}

#[test]
fn timestamped_vectors_expire_both_ways() {
    for v in vectors().into_iter().filter(|v| v.now != 0) {
        let headers = header_map(&v.headers);
        for now in [v.now - 301, v.now + 301] {
            let verifier = verifier(&v.scheme, &v.secret, now).unwrap();
            assert_eq!(
                verifier.verify(&headers, &v.body),
                Err(hookroom::verify::VerifyError::TimestampOutOfTolerance),
                "{} at {now}",
                v.scheme
            );
        }
    }
}

#[test]
fn github_payload_fixtures_verify_with_their_real_headers() {
    let dir = fixtures().join("payloads/github");
    let verifier = GithubVerifier::new(
        hookroom::verify::Secrets::try_from("It's a Secret to Everybody").unwrap(),
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(event) = name.strip_suffix(".headers.json") else {
            continue;
        };
        let headers: serde_json::Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
            .collect();
        let body = std::fs::read(dir.join(format!("{event}.json"))).unwrap();
        let headers = header_map(&headers);
        assert_eq!(
            verifier.verify(&headers, &body),
            Ok(hookroom::verify::dangerous::assume_verified(0)),
            "{event}"
        );

        // Re-serializing the JSON (as a framework might) breaks the signature.
        let reserialized =
            serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
        assert!(verifier.verify(&headers, &reserialized).is_err(), "{event}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}
