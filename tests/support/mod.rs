//! Shared fixtures for the test harnesses.
//!
//! # Layout
//! The library's tests are a few harnesses, one folder each: `tests/<area>/main.rs`
//! declares one `mod` per file of the folder and includes this module with
//! `#[path = "../support/mod.rs"] mod support;`, so every file reaches the
//! fixtures as `crate::support`. A test file that sets a `#[global_allocator]`
//! is a binary of its own (`tests/verify_alloc.rs`): the allocator would count
//! every other test of a shared binary.
//!
//! # Feature gates: one way
//! A file that needs a feature says so in its first attribute,
//! `#![cfg(feature = "...")]` (or `#![cfg(all(...))]`), and a single test that
//! needs more than its file carries `#[cfg(feature = "...")]` itself. Without
//! the feature the file compiles to nothing and its tests are not listed.
//! Nothing else gates the harnesses: no `required-features` in `Cargo.toml`,
//! no `cfg!` checked at run time. (A missing PostgreSQL server is not a
//! feature: `postgres::TestPostgres::start` skips, or fails under `CI=true`.)
#![allow(dead_code, unreachable_pub)]

pub mod postgres;
pub mod principals;
pub mod serve;
pub mod tasks;
