//! The baseline of the HTTP load bench (`benches/http_load.sh`): a bare
//! hyper 1 server that reads each request's body and answers `200` with an
//! empty body. No verification, parsing, routing or storing: what is left
//! is the cost of HTTP/1 and the socket, which the gateway pays too.
//!
//! ```text
//! cargo run --release --example bare_hyper -- --listen 127.0.0.1:8940
//! ```
//!
//! It runs on tokio's default multi-threaded runtime and the system
//! allocator, as the gateway example does, so the two compare like for like.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn listen_addr() -> Result<SocketAddr, String> {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8940));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs a value")?;
                listen = value
                    .parse()
                    .map_err(|_| format!("--listen: `{value}` is not an address"))?;
            }
            other => {
                return Err(format!(
                    "unknown flag `{other}`; usage: bare_hyper [--listen ADDR]"
                ));
            }
        }
    }
    Ok(listen)
}

/// Reads the whole body, then answers `200`; a body that breaks off is `400`.
async fn answer(request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = status;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = listen_addr()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("bare hyper on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
