//! `hookroom` as its users run it: the built binary, started with flags and
//! variables, answering over loopback.

mod cli;
mod jobs_api;
mod one_truth;
// The library's throwaway PostgreSQL server for tests, shared by both
// crates' tests; its feature gates name the library's features.
#[path = "../../../tests/support/postgres.rs"]
#[allow(unexpected_cfgs, dead_code, unreachable_pub)]
mod postgres;
mod principals;
mod routes_api;
#[allow(unreachable_pub)]
mod support;
mod task_api;
