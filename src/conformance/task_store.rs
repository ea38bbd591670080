//! Conformance checks for [`TaskStore`](crate::task::TaskStore) backends.
