//! `hookroom`: signed webhooks in, tasks in rooms out.
//!
//! One binary with four subcommands:
//!
//! - `hookroom serve` (also what runs with no subcommand): the gateway, with
//!   `/webhook/{source}`, the Task, Jobs and Routes APIs, `/mcp`, `/health`,
//!   `/operations` and `/metrics` on one listener;
//! - `hookroom mcp`: an MCP server over stdio for an LLM agent;
//! - `hookroom send`: signs and sends a test webhook as its provider would;
//! - `hookroom check`: loads a routes file and a settings file and prints the
//!   effective routes and which secrets are set.
//!
//! Every subcommand's `--help` lists its flags, the `HOOKROOM_*` variable
//! each one reads, and its default.

use std::process::ExitCode;

use clap::Parser;

mod app;
mod banner;
mod check;
mod cli;
mod conn;
mod jobs;
mod mcp;
mod observability;
mod reload;
mod routes_api;
mod send;
mod serve;
mod settings;
mod store;
mod task_api;
mod token;

/// jemalloc, as servers commonly run. glibc's malloc, on a gateway whose
/// SQLite writer thread frees what the runtime's threads allocated and the
/// other way round, spends its time consolidating and unlinking chunks
/// across arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookroom: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli
        .command
        .unwrap_or_else(|| cli::Command::Serve(Box::new(cli.serve)));
    let (name, outcome) = match command {
        cli::Command::Serve(args) => ("serve", runtime.block_on(serve::run(*args))),
        cli::Command::Mcp(args) => ("mcp", runtime.block_on(mcp::run(args))),
        cli::Command::Send(args) => ("send", runtime.block_on(send::run(args))),
        cli::Command::Check(args) => ("check", check::run(&args)),
        cli::Command::Token(args) => ("token", token::run(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("hookroom {name}: {message}");
            ExitCode::FAILURE
        }
    }
}
