//! The session bounds, through a client over an in-memory pipe.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::RunningService;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

use super::{McpServer, McpSession};
use crate::task::InMemoryTaskStore;

struct Client;

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("t", "1"))
    }
}

async fn connect(session: McpSession) -> RunningService<RoleClient, Client> {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = session.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    Client.serve(client_io).await.expect("initialize")
}

#[tokio::test]
async fn a_session_joins_at_most_its_rooms_and_then_gets_a_coded_error() {
    let server = McpServer::builder(Arc::new(InMemoryTaskStore::new()))
        .max_rooms_per_session(2)
        .build();
    let client = connect(server.session()).await;
    let join = |room: &str| {
        CallToolRequestParams::new("join_room").with_arguments(
            json!({ "room": room, "capabilities": [] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
    };
    for room in ["a", "b", "a"] {
        let answer = client.call_tool(join(room)).await.unwrap();
        assert_ne!(answer.is_error, Some(true), "{answer:?}");
    }
    let refused = client.call_tool(join("c")).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    let text = format!("{:?}", refused.content);
    assert!(text.contains("rooms_per_session_exceeded"), "{text}");
}
