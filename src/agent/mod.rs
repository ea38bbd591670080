//! Agents: what claims a task and does the work.
