//! PostgreSQL inserts and job creations in batches: concurrent
//! redeliveries through two stores on one database are stored once and
//! each answered with the stored task, a value PostgreSQL refuses fails
//! only its own insert, and a registry beside the store creates each job
//! once with its first history entry.
#![cfg(all(feature = "postgres", feature = "integration"))]

use crate::support;

use std::collections::{HashMap, HashSet};

use hookroom::postgres::{PostgresJobRegistry, PostgresTaskStore};
use hookroom::status::{JobEvent, JobInput, JobRegistry, JobStatus, SinkError, StatusSink};
use hookroom::task::{TaskQuery, TaskStore};
use support::postgres::TestPostgres;
use support::tasks::push_task;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redeliveries_through_two_stores_are_stored_once() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let connect = || {
        PostgresTaskStore::builder(&pg.url)
            .with_table("batch_tasks")
            .build()
    };
    let (one, two) = (
        connect().await.expect("store 1"),
        connect().await.expect("store 2"),
    );
    // 50 deliveries, each sent 4 times at once: twice to each store.
    let mut sends = tokio::task::JoinSet::new();
    for copy in 0..4 {
        for delivery in 0..50 {
            let store = if copy % 2 == 0 {
                one.clone()
            } else {
                two.clone()
            };
            sends.spawn(async move {
                let id = format!("d-{delivery}");
                (id.clone(), store.insert(push_task("room", &id)).await)
            });
        }
    }
    let mut answers: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    while let Some(joined) = sends.join_next().await {
        let (delivery, inserted) = joined.expect("task");
        let inserted = inserted.expect("insert");
        answers
            .entry(delivery)
            .or_default()
            .push((inserted.id.to_string(), inserted.duplicate));
    }
    assert_eq!(answers.len(), 50);
    for (delivery, answers) in &answers {
        let ids: HashSet<&String> = answers.iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 1, "{delivery}: answered with different tasks");
        let new = answers.iter().filter(|(_, duplicate)| !duplicate).count();
        assert_eq!(new, 1, "{delivery}: {answers:?}");
    }
    let stored = one
        .list(&TaskQuery {
            limit: Some(1000),
            ..TaskQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(stored.len(), 50);
    for task in &stored {
        assert_eq!(answers[&task.delivery_id][0].0, task.id.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_value_fails_only_its_own_insert() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("refused_tasks")
        .build()
        .await
        .expect("store");
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = store.clone();
        sends.spawn(async move {
            let mut task = push_task("room", &format!("d-{n}"));
            if n == 7 {
                // A text column cannot hold NUL.
                task.title = "bad\0title".into();
            }
            (n, store.insert(task).await)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = sends.join_next().await {
        let (n, inserted) = joined.expect("task");
        match inserted {
            Ok(inserted) => assert!(!inserted.duplicate),
            Err(_) => failed.push(n),
        }
    }
    assert_eq!(failed, [7]);
    let stored = store
        .list(&TaskQuery {
            limit: Some(1000),
            ..TaskQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(stored.len(), 39);
}

fn created(job_id: &str) -> JobEvent {
    JobEvent::Created {
        job_id: job_id.into(),
        at: OffsetDateTime::now_utc(),
        input_data: JobInput::from_serialize(&serde_json::json!({"n": job_id})).expect("input"),
        metadata: serde_json::Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_beside_the_store_creates_each_job_once_with_its_first_entry() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let store = PostgresTaskStore::connect(&pg.url).await.expect("store");
    let registry = PostgresJobRegistry::beside(&store).await.expect("registry");
    let mut creations = tokio::task::JoinSet::new();
    // 60 jobs, each created twice at once: one creation wins.
    for copy in 0..2 {
        for n in 0..60 {
            let registry = registry.clone();
            creations.spawn(async move {
                (copy, n, registry.publish(created(&format!("j-{n}"))).await)
            });
        }
    }
    let mut won = HashMap::new();
    while let Some(joined) = creations.join_next().await {
        let (_, n, outcome) = joined.expect("task");
        match outcome {
            Ok(()) => *won.entry(n).or_insert(0) += 1,
            Err(SinkError::InvalidStatus { reason }) => assert!(reason.contains("already exists")),
            Err(other) => panic!("j-{n}: {other}"),
        }
    }
    assert_eq!(won.len(), 60);
    assert!(won.values().all(|&wins| wins == 1), "{won:?}");
    for n in 0..60 {
        let view = registry
            .job(&format!("j-{n}"), true)
            .await
            .expect("read")
            .expect("created");
        assert_eq!(view.job.status, JobStatus::Pending);
        assert_eq!(
            view.job.input_data,
            serde_json::json!({"n": format!("j-{n}")})
        );
        let history = view.history.expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].status, JobStatus::Pending);
    }
}
