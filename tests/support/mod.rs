//! Shared fixtures for integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod postgres;
pub mod serve;
pub mod tasks;
