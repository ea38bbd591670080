//! The in-memory status sink seen from outside: the seed-001 JSON shape of
//! what it serves, and the shared conformance suite.
#![cfg(feature = "memory")]

use std::collections::BTreeSet;

use hookroom::api::jobs::{JobCompleteRequest, JobCreateRequest, StatusUpdateRequest};
use hookroom::status::{InMemoryStatusSink, StatusSink};
use serde_json::{Value, json};
use time::macros::datetime;

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn seed_requests_produce_the_seed_job_view() {
    let sink = InMemoryStatusSink::new();
    let t0 = datetime!(2024-01-15 10:30:00 UTC);
    let create: JobCreateRequest = serde_json::from_value(json!({
        "input_data": {"pop_file_path": "populacja/data.xlsx", "validation_mode": "full"},
        "metadata": {"user_id": "user123", "session_id": "session456"}
    }))
    .unwrap();
    let id = "550e8400-e29b-41d4-a716-446655440000";
    sink.publish(create.into_event(id, t0)).await.unwrap();
    let update: StatusUpdateRequest = serde_json::from_value(json!({
        "status": "RUNNING",
        "progress": {
            "current_step": "PDF Processing",
            "total_steps": 5,
            "completed_steps": 2,
            "percentage": 40,
            "estimated_remaining": "5 minutes"
        },
        "message": "Processing PDF files..."
    }))
    .unwrap();
    sink.publish(update.into_event(id, datetime!(2024-01-15 10:35:00 UTC)))
        .await
        .unwrap();

    let view = serde_json::to_value(sink.get(id, true).unwrap()).unwrap();
    assert_eq!(keys(&view), BTreeSet::from(["job", "history"]));
    let job = &view["job"];
    assert_eq!(
        keys(job),
        BTreeSet::from([
            "job_id",
            "status",
            "created_at",
            "updated_at",
            "input_data",
            "progress",
            "artifacts",
            "metadata"
        ])
    );
    assert_eq!(job["status"], json!("RUNNING"));
    assert_eq!(job["created_at"], json!("2024-01-15T10:30:00Z"));
    assert_eq!(job["updated_at"], json!("2024-01-15T10:35:00Z"));
    assert_eq!(job["progress"]["percentage"], json!(40));
    assert_eq!(job["metadata"]["session_id"], json!("session456"));
    assert_eq!(
        view["history"],
        json!([
            {"timestamp": "2024-01-15T10:30:00Z", "status": "PENDING", "message": "Job created", "step": "initialization"},
            {"timestamp": "2024-01-15T10:35:00Z", "status": "RUNNING", "message": "Processing PDF files...", "step": "PDF Processing"}
        ])
    );
    let without = serde_json::to_value(sink.get(id, false).unwrap()).unwrap();
    assert_eq!(keys(&without), BTreeSet::from(["job"]));

    let complete: JobCompleteRequest = serde_json::from_value(json!({
        "final_status": "DONE",
        "summary": {"total_records_processed": 1500},
        "final_artifacts": [{"name": "audit_report.xlsx", "type": "excel_report", "size": 2048576}],
        "completion_message": "Audit completed successfully"
    }))
    .unwrap();
    sink.publish(complete.into_event(id, datetime!(2024-01-15 10:33:00 UTC)))
        .await
        .unwrap();
    let job = serde_json::to_value(sink.get(id, false).unwrap().job).unwrap();
    assert_eq!(job["status"], json!("DONE"));
    // A completion stamped earlier than the last update never moves time back.
    assert_eq!(job["updated_at"], json!("2024-01-15T10:35:00Z"));
    assert_eq!(job["artifacts"][0]["type"], json!("excel_report"));
    assert_eq!(
        job["metadata"]["summary"],
        json!({"total_records_processed": 1500})
    );
}

#[cfg(feature = "integration")]
#[tokio::test]
async fn in_memory_sink_passes_the_conformance_suite() {
    let sink = InMemoryStatusSink::new();
    hookroom::conformance::status_sink::run_all(std::sync::Arc::new(sink.clone()), &sink).await;
}

#[cfg(feature = "integration")]
#[tokio::test]
async fn a_sink_behind_an_arc_passes_the_conformance_suite() {
    let sink = InMemoryStatusSink::new().with_max_history(1_000);
    let wrapped: std::sync::Arc<dyn StatusSink> =
        std::sync::Arc::new(std::sync::Arc::new(sink.clone()));
    hookroom::conformance::status_sink::run_all(wrapped, &sink).await;
}
