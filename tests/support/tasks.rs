//! New tasks for the store tests.

use hookroom::task::NewTask;

/// A pending task in `room` from the GitHub push delivery `delivery`:
/// titled `task {delivery}`, priority 1, an empty JSON object as payload, no
/// capabilities, no TTL. Tests change what they need with struct update
/// syntax (`NewTask { ttl: …, ..push_task(room, delivery) }`).
pub fn push_task(room: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.into(),
        title: format!("task {delivery}"),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "push".into(),
        source_url: None,
        delivery_id: delivery.into(),
        payload: "{}".into(),
        required_capabilities: vec![],
        ttl: None,
    }
}
