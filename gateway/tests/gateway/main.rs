//! `hookroom` as its users run it: the built binary, started with flags and
//! variables, answering over loopback.

mod cli;
mod jobs_api;
mod routes_api;
#[allow(unreachable_pub)]
mod support;
mod task_api;
