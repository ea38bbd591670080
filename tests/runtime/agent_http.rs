//! `HttpAgent` against a local endpoint: every delivery is signed so that a
//! Standard Webhooks verifier accepts it, and each kind of answer maps to
//! the task's end (DONE, FAILED for good, retry, NEEDS_INPUT).
#![cfg(all(feature = "http-client", feature = "memory"))]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hookroom::agent::testing::task;
use hookroom::agent::{Agent, AgentError, JobHandle};
use hookroom::http::{AgentRequest, HttpAgent};
use hookroom::verify::Verifier;
use hookroom::verify::standard_webhooks::StandardWebhooksVerifier;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Answer = Arc<dyn Fn(&AgentRequest) -> (u16, String) + Send + Sync>;

/// An endpoint that verifies each delivery, records it, and answers with
/// `answer`. Unsigned or badly signed deliveries get 401.
async fn endpoint(answer: Answer) -> (SocketAddr, Arc<Mutex<Vec<AgentRequest>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let verifier = Arc::new(
        StandardWebhooksVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
            .unwrap(),
    );
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answer, verifier, seen) = (answer.clone(), verifier.clone(), recorded.clone());
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (answer, verifier, seen) = (answer.clone(), verifier.clone(), seen.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let (status, text) = if verifier.verify(&parts.headers, &body).is_err() {
                        (401, "bad signature".to_owned())
                    } else {
                        let request: AgentRequest = serde_json::from_slice(&body).unwrap();
                        let out = answer(&request);
                        seen.lock().unwrap().push(request);
                        out
                    };
                    let mut response = http::Response::new(Full::new(Bytes::from(text)));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn agent(addr: SocketAddr, secret: &str) -> HttpAgent {
    HttpAgent::new("http-agent", &format!("http://{addr}/hook"), secret).unwrap()
}

#[tokio::test]
async fn a_2xx_is_done_with_the_body_as_result_and_the_delivery_verifies() {
    let (addr, seen) = endpoint(Arc::new(|_| (200, r#"{"labels":["bug"]}"#.into()))).await;
    let task = task("room", "t", r#"{"n":1}"#);
    let (job, _recorder) = JobHandle::recording(task.clone());
    let output = agent(addr, SECRET)
        .handle(task.clone(), &job)
        .await
        .unwrap();
    assert_eq!(output.result, Some(serde_json::json!({"labels": ["bug"]})));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the signature verified");
    assert_eq!(seen[0].task.id, task.id);
    assert_eq!(seen[0].task.payload.as_bytes(), br#"{"n":1}"#);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver_and_fails_for_good() {
    let (addr, seen) = endpoint(Arc::new(|_| (200, "{}".into()))).await;
    let task = task("room", "t", "{}");
    let (job, _recorder) = JobHandle::recording(task.clone());
    let e = agent(addr, "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldA==")
        .handle(task, &job)
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Permanent(_)), "{e:?}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_4xx_fails_for_good_and_a_5xx_or_no_answer_is_retried() {
    let (addr, _) = endpoint(Arc::new(|_| (422, "no".into()))).await;
    let t = task("room", "t", "{}");
    let (job, _r) = JobHandle::recording(t.clone());
    let e = agent(addr, SECRET)
        .handle(t.clone(), &job)
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");

    let (addr, _) = endpoint(Arc::new(|_| (503, "later".into()))).await;
    let e = agent(addr, SECRET)
        .handle(t.clone(), &job)
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Retryable(_)), "{e:?}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = agent(closed, SECRET).handle(t, &job).await.unwrap_err();
    assert!(matches!(e, AgentError::Retryable(_)), "{e:?}");
}

#[tokio::test]
async fn a_202_needs_input_asks_and_posts_again_with_the_input() {
    let (addr, seen) = endpoint(Arc::new(|request: &AgentRequest| match &request.input {
        None => (202, r#"{"needs_input":"which branch?"}"#.into()),
        Some(input) => (200, format!(r#"{{"branch":{input}}}"#)),
    }))
    .await;
    let t = task("room", "t", "{}");
    let (job, recorder) = JobHandle::recording(t.clone());
    recorder.provide_input(serde_json::json!("main"));
    let output = agent(addr, SECRET).handle(t, &job).await.unwrap();
    assert_eq!(recorder.prompts(), vec!["which branch?".to_owned()]);
    assert_eq!(output.result, Some(serde_json::json!({"branch": "main"})));
    assert_eq!(seen.lock().unwrap().len(), 2);
}
