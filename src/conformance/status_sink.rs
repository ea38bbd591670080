//! Conformance checks for [`StatusSink`](crate::status::StatusSink) backends.
