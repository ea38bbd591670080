//! A remote agent: a separate process that works a room of a gateway over
//! the Task API, with [`HttpTaskStore`].
//!
//! ```sh
//! HOOKROOM_API_TOKEN=t cargo run --features http-client --example remote_agent -- \
//!     --gateway http://127.0.0.1:8935 --room pr-review --token-env HOOKROOM_API_TOKEN
//! ```
//!
//! It joins the room, waits for work with a room claim the gateway holds
//! until a task arrives (`wait_seconds`), claims it, heartbeats while it
//! "works" (the heartbeats are its progress reports: each renews the lease
//! and the room membership), and completes the task with a result. The
//! gateway reports the claim and the result to the task's job; the agent
//! then reads that job's history from the gateway's Jobs API
//! (`GET /api/jobs/{task_id}?include_history=true`, same token) and prints
//! it. Each step is printed. `--once` stops after one task; `--agent-id` and
//! `--capability` (repeatable) name the agent and what it can do.

use std::process::ExitCode;
use std::time::Duration;

use hookroom::http::HttpStatusSink;
use hookroom::http::HttpTaskStore;
use hookroom::task::{ClaimRequest, TaskStore};

const USAGE: &str = "usage: remote_agent --gateway URL --room ROOM --token-env VAR \
    [--agent-id ID] [--capability CAP]... [--once]";

/// The lease asked for at each claim and heartbeat.
const LEASE: Duration = Duration::from_secs(30);
/// How long one claim waits at the gateway for a task.
const WAIT: Duration = Duration::from_secs(25);
/// The simulated work: this many steps, one heartbeat each.
const STEPS: u32 = 3;

struct Args {
    gateway: String,
    room: String,
    token_env: String,
    agent_id: String,
    capabilities: Vec<String>,
    once: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        gateway: String::new(),
        room: String::new(),
        token_env: String::new(),
        agent_id: format!("remote-agent-{}", std::process::id()),
        capabilities: Vec::new(),
        once: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--gateway" => args.gateway = value()?,
            "--room" => args.room = value()?,
            "--token-env" => args.token_env = value()?,
            "--agent-id" => args.agent_id = value()?,
            "--capability" => args.capabilities.push(value()?),
            "--once" => args.once = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if args.gateway.is_empty() || args.room.is_empty() || args.token_env.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let token = match std::env::var(&args.token_env) {
        Ok(token) if !token.is_empty() => token,
        _ => {
            eprintln!("{} is not set: it holds the Task API token", args.token_env);
            return ExitCode::from(2);
        }
    };
    let store = match HttpTaskStore::builder(&args.gateway, token.as_str()).build() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The Jobs API of the same gateway, read with the same token.
    let jobs = match HttpStatusSink::builder(format!("{}/api", args.gateway.trim_end_matches('/')))
        .bearer_token(token)
        .build()
    {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&store, &jobs, &args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    store: &HttpTaskStore,
    jobs: &HttpStatusSink,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    let joined = store
        .join(&args.room, &args.agent_id, &args.capabilities)
        .await?;
    println!(
        "joined room {} as {} (membership lapses after {} s of silence)",
        joined.room, joined.agent.agent_id, joined.expires_after_seconds
    );
    let request = ClaimRequest {
        room: args.room.clone(),
        agent: args.agent_id.clone(),
        capabilities: args.capabilities.clone(),
        lease: LEASE,
    };
    loop {
        println!("waiting for a task in {} …", args.room);
        let Some(claimed) = store.claim_wait(&request, WAIT).await? else {
            continue;
        };
        let task = &claimed.task;
        println!(
            "claimed {} \"{}\" ({} {}, attempt {})",
            task.id, task.title, task.source, task.source_event, task.attempts
        );
        for step in 1..=STEPS {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let task = store.heartbeat(&task.id, &claimed.token, LEASE).await?;
            println!(
                "progress {step}/{STEPS}: lease renewed until {}",
                task.lease_expires_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_string())
            );
        }
        let result = serde_json::json!({
            "agent": args.agent_id,
            "summary": format!("handled {}", task.title),
        });
        let done = store
            .complete(&task.id, &claimed.token, Some(result))
            .await?;
        println!(
            "completed {}: {} with result {}",
            done.id,
            done.status,
            done.result.unwrap_or_default()
        );
        print_history(jobs, done.id.as_str()).await;
        if args.once {
            return Ok(());
        }
    }
}

/// Prints the job of the task (its job id is the task id) with its history,
/// as the gateway's Jobs API has it.
async fn print_history(jobs: &HttpStatusSink, job_id: &str) {
    match jobs.pull_job(job_id, true).await {
        Ok(Some(view)) => {
            println!("job {job_id}: {}", view.job.status);
            for entry in view.history.unwrap_or_default() {
                println!(
                    "  {} {}{}",
                    entry.timestamp,
                    entry.status,
                    entry
                        .message
                        .map_or_else(String::new, |m| format!(" ({m})"))
                );
            }
        }
        Ok(None) => println!("job {job_id}: not in the gateway's Jobs API"),
        Err(e) => println!("job {job_id}: could not read its history: {e}"),
    }
}
