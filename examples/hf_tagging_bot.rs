//! The Hugging Face tagging bot end to end: Hugging Face discussion comments become tasks in a
//! room; a tagging agent extracts tags from the comment and the discussion
//! title, reads the repo's current tags through a [`HubClient`], and adds the
//! missing ones. Every step shows up as job status.
//!
//! ```text
//! # offline: a fake Hub on 127.0.0.1, a self-signed webhook, then exit
//! cargo run --example hf_tagging_bot -- --demo
//! # for real: WEBHOOK_SECRET set, a Hub-compatible API at --hub-url (plain HTTP)
//! WEBHOOK_SECRET=... cargo run --example hf_tagging_bot -- --hub-url http://127.0.0.1:9000
//! ```
//!
//! The [`HttpHubClient`] reads tags with `GET {base}/api/models/{repo}`
//! (`{"tags": [...]}`, as the Hub answers) and adds them with
//! `POST {base}/api/models/{repo}/tags` (`{"add": [...]}`), the demo Hub's
//! stand-in for the metadata-update pull request the real Hub needs.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use tower_service::Service;

use hookroom::agent::{AgentError, AgentOutput, Worker, agent_fn};
use hookroom::route::{Route, RouteDecision, Router};
use hookroom::service::{Gateway, PeerAddr, WebhookService};
use hookroom::source::HuggingFaceSource;
use hookroom::status::{InMemoryStatusSink, JobStatus, Progress};
use hookroom::task::{InMemoryTaskStore, Task, TaskStore};
use hookroom::verify::{HuggingFaceVerifier, Secret};
use hookroom::{Event, Verified};

const ROOM: &str = "hf-tagging";

/// Tags the bot recognises, as a typical tagging bot does.
const KNOWN_TAGS: &[&str] = &[
    "pytorch",
    "tensorflow",
    "jax",
    "transformers",
    "diffusers",
    "safetensors",
    "gguf",
    "onnx",
    "text-generation",
    "text-classification",
    "image-classification",
    "question-answering",
    "summarization",
    "translation",
    "llama",
    "bert",
    "gpt2",
    "t5",
    "whisper",
    "lora",
    "peft",
    "quantized",
    "english",
    "multilingual",
];

/// Tags mentioned in `text`: known tag words, and `#hashtags`.
fn extract_tags(text: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '#')) {
        let lower = word.to_lowercase();
        if let Some(tag) = lower.strip_prefix('#').filter(|t| !t.is_empty()) {
            tags.insert(tag.to_owned());
        } else if KNOWN_TAGS.contains(&lower.as_str()) {
            tags.insert(lower);
        }
    }
    tags
}

/// What the agent needs from the Hub.
#[async_trait]
trait HubClient: Send + Sync + 'static {
    /// The repo's current tags.
    async fn current_tags(&self, repo: &str) -> Result<Vec<String>, HubError>;
    /// Adds `tags` to the repo.
    async fn add_tags(&self, repo: &str, tags: &[String]) -> Result<(), HubError>;
}

#[derive(Debug)]
enum HubError {
    /// Network trouble or a 5xx: worth retrying.
    Unavailable(String),
    /// A 4xx or an unreadable answer: retrying will not help.
    Rejected(String),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "hub unavailable: {why}"),
            Self::Rejected(why) => write!(f, "hub rejected the request: {why}"),
        }
    }
}

impl std::error::Error for HubError {}

impl From<HubError> for AgentError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Unavailable(_) => AgentError::retryable(e),
            HubError::Rejected(_) => AgentError::permanent(e),
        }
    }
}

/// [`HubClient`] over HTTP against `base` (plain HTTP; put a TLS-terminating
/// proxy in front for the real Hub).
struct HttpHubClient {
    base: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl HttpHubClient {
    fn new(base: &str, token: Option<String>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Bytes, HubError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = request
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| HubError::Rejected(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| HubError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HubError::Unavailable(e.to_string()))?
            .to_bytes();
        match status {
            s if s.is_success() => Ok(bytes),
            s if s.is_server_error() => Err(HubError::Unavailable(format!("{s} from {path}"))),
            s => Err(HubError::Rejected(format!("{s} from {path}"))),
        }
    }
}

#[async_trait]
impl HubClient for HttpHubClient {
    async fn current_tags(&self, repo: &str) -> Result<Vec<String>, HubError> {
        #[derive(Deserialize)]
        struct ModelInfo {
            #[serde(default)]
            tags: Vec<String>,
        }
        let bytes = self
            .call(Method::GET, &format!("/api/models/{repo}"), None)
            .await?;
        serde_json::from_slice::<ModelInfo>(&bytes)
            .map(|info| info.tags)
            .map_err(|e| HubError::Rejected(format!("model info: {e}")))
    }

    async fn add_tags(&self, repo: &str, tags: &[String]) -> Result<(), HubError> {
        let body = serde_json::json!({ "add": tags });
        self.call(
            Method::POST,
            &format!("/api/models/{repo}/tags"),
            Some(body),
        )
        .await
        .map(drop)
    }
}

/// The fields of a `discussion.comment.create` payload the agent reads.
#[derive(Deserialize)]
struct CommentPayload {
    repo: Named,
    discussion: Titled,
    comment: Comment,
}
#[derive(Deserialize)]
struct Named {
    name: String,
}
#[derive(Deserialize)]
struct Titled {
    title: String,
}
#[derive(Deserialize)]
struct Comment {
    content: String,
}

fn step(name: &str, done: u32) -> Progress {
    Progress {
        current_step: Some(name.to_owned()),
        total_steps: Some(3),
        completed_steps: Some(done),
        percentage: Some(f64::from(done) * 100.0 / 3.0),
        estimated_remaining: None,
    }
}

/// The tagging agent: extract → read current tags → add the missing ones.
fn tagging_worker(
    hub: Arc<dyn HubClient>,
    store: Arc<dyn TaskStore>,
    sink: InMemoryStatusSink,
) -> Worker {
    let agent = agent_fn(move |task: Task, job| {
        let hub = Arc::clone(&hub);
        async move {
            let payload: CommentPayload = task
                .payload
                .json()
                .map_err(|e| AgentError::permanent(format!("not a discussion comment: {e}")))?;
            let mut wanted = extract_tags(&payload.comment.content);
            wanted.extend(extract_tags(&payload.discussion.title));
            job.report(Some(step("extract_tags", 1)), Some(format!("found {wanted:?}"))).await;
            if wanted.is_empty() {
                return Ok(AgentOutput::new()
                    .with_result(serde_json::json!({"repo": payload.repo.name, "added": [], "status": "no_tags"}))
                    .with_message("no recognisable tags"));
            }
            let current = hub.current_tags(&payload.repo.name).await?;
            job.report(Some(step("read_tags", 2)), Some(format!("repo has {current:?}"))).await;
            let missing: Vec<String> = wanted.iter().filter(|t| !current.contains(t)).cloned().collect();
            if !missing.is_empty() {
                hub.add_tags(&payload.repo.name, &missing).await?;
            }
            job.report(Some(step("add_tags", 3)), Some(format!("added {missing:?}"))).await;
            Ok(AgentOutput::new()
                .with_result(serde_json::json!({
                    "repo": payload.repo.name,
                    "added": missing,
                    "already_present": wanted.iter().filter(|t| current.contains(t)).collect::<Vec<_>>(),
                }))
                .with_message(format!("tagged {}", payload.repo.name)))
        }
    })
    .with_name("hf-tagger");
    Worker::builder(Arc::new(agent), store)
        .status_sink(Arc::new(sink))
        .room(ROOM)
        .poll_interval(Duration::from_millis(50))
        .build()
        .expect("a worker with one room builds")
}

/// Discussion comments go to the tagging room; every other Hub event is
/// acknowledged and ignored, as a Hugging Face webhook listener should.
#[derive(Debug)]
struct CommentsOnly;

impl Router for CommentsOnly {
    fn route(&self, event: &Verified<Event>) -> RouteDecision {
        if event.name == "discussion.comment.create" {
            RouteDecision::Deliver(Route {
                room: Arc::from(ROOM),
                priority: 2,
                ttl: Some(Duration::from_secs(3600)),
            })
        } else {
            RouteDecision::Ignore {
                reason: "not a discussion comment creation".into(),
            }
        }
    }
}

async fn serve<S>(listener: tokio::net::TcpListener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    while let Ok((stream, peer)) = listener.accept().await {
        let service = service.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                service.clone().call(request)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A fake Hub: `GET /api/models/{repo}` and `POST /api/models/{repo}/tags`.
#[derive(Clone, Default)]
struct FakeHub {
    tags: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl FakeHub {
    fn tags_of(&self, repo: &str) -> Vec<String> {
        self.tags
            .lock()
            .map(|t| t.get(repo).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    async fn handle(self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let answer = |status: StatusCode, json: serde_json::Value| {
            let mut r = Response::new(Full::new(Bytes::from(json.to_string())));
            *r.status_mut() = status;
            r
        };
        let Some(rest) = path.strip_prefix("/api/models/") else {
            return answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not found"}),
            );
        };
        let Ok(mut tags) = self.tags.lock() else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({}));
        };
        match (method, rest.strip_suffix("/tags")) {
            (Method::GET, None) => {
                let current = tags.get(rest).cloned().unwrap_or_default();
                answer(
                    StatusCode::OK,
                    serde_json::json!({"id": rest, "tags": current}),
                )
            }
            (Method::POST, Some(repo)) => {
                #[derive(Deserialize)]
                struct Add {
                    add: Vec<String>,
                }
                match serde_json::from_slice::<Add>(&body) {
                    Ok(add) => {
                        let entry = tags.entry(repo.to_owned()).or_default();
                        for tag in add.add {
                            if !entry.contains(&tag) {
                                entry.push(tag);
                            }
                        }
                        answer(StatusCode::OK, serde_json::json!({"tags": entry}))
                    }
                    Err(e) => answer(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({"error": e.to_string()}),
                    ),
                }
            }
            _ => answer(StatusCode::METHOD_NOT_ALLOWED, serde_json::json!({})),
        }
    }
}

fn ingest(secret: Secret, store: Arc<dyn TaskStore>, sink: InMemoryStatusSink) -> Gateway {
    Gateway::builder(
        WebhookService::builder(Arc::new(CommentsOnly), store)
            .status_sink(Arc::new(sink))
            .source(
                "huggingface",
                Arc::new(HuggingFaceVerifier::new(secret)),
                Arc::new(HuggingFaceSource::new()),
            )
            .build(),
    )
    .build()
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let secret = "demo-webhook-secret";
    let hub = FakeHub::default();
    hub.tags
        .lock()
        .map_err(|_| "poisoned")?
        .insert("some-user/some-repo".into(), vec!["pytorch".into()]);
    let hub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hub_url = format!("http://{}", hub_listener.local_addr()?);
    let fake = hub.clone();
    tokio::spawn(serve(
        hub_listener,
        tower::service_fn(move |r| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.handle(r).await) }
        }),
    ));

    let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
    let sink = InMemoryStatusSink::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(serve(
        listener,
        ingest(Secret::new(secret)?, Arc::clone(&store), sink.clone()),
    ));
    let worker = tagging_worker(
        Arc::new(HttpHubClient::new(&hub_url, None)),
        Arc::clone(&store),
        sink.clone(),
    )
    .spawn();
    println!("fake Hub at {hub_url} (some-user/some-repo has [pytorch]); gateway at http://{addr}");

    // A local test webhook, signed with the shared secret.
    let payload = serde_json::json!({
        "event": {"action": "create", "scope": "discussion.comment"},
        "repo": {"type": "model", "name": "some-user/some-repo"},
        "discussion": {"title": "Missing tags", "num": 1, "url": {"web": "https://huggingface.co/some-user/some-repo/discussions/1"}},
        "comment": {"content": "This model needs tags: pytorch, transformers, #lora", "author": {"id": "test-user"}},
    });
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("http://{addr}/webhook/huggingface"))
        .header("content-type", "application/json")
        .header("x-webhook-secret", secret)
        .body(Full::new(Bytes::from(payload.to_string())))?;
    let response = client.request(request).await?;
    let status = response.status();
    let ack: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    println!("webhook answered {status}: {ack}");
    let job_id = ack["task_id"]
        .as_str()
        .ok_or("no task id in the answer")?
        .to_owned();

    // Follow the job until it ends (an example may poll; tests never sleep).
    let mut view = None;
    for _ in 0..200 {
        if let Some(v) = sink.get(&job_id, true)
            && v.job.status.is_terminal()
        {
            view = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let view = view.ok_or("the job did not finish within 5 s")?;
    println!("\njob {job_id}: {}", view.job.status);
    for entry in view.history.unwrap_or_default() {
        println!(
            "  {}  {:<8} {:<13} {}",
            entry.timestamp.time(),
            entry.status.as_str(),
            entry.step.unwrap_or_default(),
            entry.message.unwrap_or_default()
        );
    }
    println!(
        "\nHub tags of some-user/some-repo now: {:?}",
        hub.tags_of("some-user/some-repo")
    );
    worker.shutdown().await;
    if view.job.status != JobStatus::Done {
        return Err("the tagging job did not succeed".into());
    }
    Ok(())
}

async fn serve_for_real(
    listen: SocketAddr,
    hub_url: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // Set but empty is an error too: an empty key is no key.
    let secret = Secret::from_env("WEBHOOK_SECRET")
        .map_err(|e| format!("{e} (export WEBHOOK_SECRET=...)"))?;
    let token = std::env::var("HF_TOKEN").ok();
    let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
    let sink = InMemoryStatusSink::new();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "tagging bot: POST http://{}/webhook/huggingface, GET /health, GET /operations",
        listener.local_addr()?
    );
    tokio::spawn(serve(
        listener,
        ingest(secret, Arc::clone(&store), sink.clone()),
    ));
    let worker = tagging_worker(Arc::new(HttpHubClient::new(hub_url, token)), store, sink);
    worker
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut demo_mode = false;
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8935));
    let mut hub_url = String::from("http://127.0.0.1:9000");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--demo" => demo_mode = true,
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--hub-url" => hub_url = args.next().ok_or("--hub-url needs a URL")?,
            other => {
                return Err(format!(
                    "unknown flag `{other}` (flags: --demo, --listen ADDR, --hub-url URL)"
                )
                .into());
            }
        }
    }
    if demo_mode {
        demo().await
    } else {
        serve_for_real(listen, &hub_url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_known_words_and_hashtags_case_insensitively() {
        let tags = extract_tags("Needs PyTorch, transformers and #LoRA; not 'model'.");
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            ["lora", "pytorch", "transformers"]
        );
    }
}
