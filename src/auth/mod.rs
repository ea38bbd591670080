//! Who may do what: principals with roles and room scopes.
//!
//! Every caller of the gateway's APIs and of MCP over HTTP is a
//! [`Principal`]: a name, a [`Role`], the rooms it may reach
//! ([`RoomScope`]) and, for viewers and operators, whether it may read
//! payloads. [`Principals`] maps bearer tokens (kept as SHA-256 digests,
//! several per principal, optionally expiring) to principals, with a rate
//! limit per principal. [`Principal::authorize`] decides every
//! [`Operation`]: the Task, Jobs and Routes APIs, MCP's tools and the
//! admin endpoints all ask it, so they cannot disagree.
//!
//! | role | may |
//! | --- | --- |
//! | `admin` | everything |
//! | `operator` | what a viewer may; answer `NEEDS_INPUT`, retry and cancel tasks, replay deliveries (in its rooms) |
//! | `viewer` | read rooms, tasks, jobs, events, routes and deliveries (in its rooms); payloads only when granted |
//! | `agent` | join rooms and claim tasks in its rooms under its own name (or `name/worker`); change the tasks it holds; read its rooms' tasks with payloads and their jobs |
//! | `reporter` | create jobs through the Jobs API and change the jobs it created |
//!
//! A webhook task's job changes only through its task (its claim holder),
//! or through the Jobs API by an admin.
//!
//! # A principals file
//!
//! TOML (or the same shape in JSON), reloaded by the gateway on `SIGHUP`:
//!
//! ```toml
//! [[principal]]
//! name = "reviewer-1"            # also its agent id
//! role = "agent"
//! rooms = ["pr-review"]          # omit for every room
//! tokens = [
//!   { sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
//!   { sha256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", expires_at = "2027-01-01T00:00:00Z" },
//! ]
//!
//! [[principal]]
//! name = "oncall"
//! role = "operator"
//! payloads = true
//! rate_per_second = 20           # default 1000, bursts of 5x
//! tokens = [{ sha256 = "…" }]
//! ```
//!
//! `hookroom token new --role agent --name reviewer-1 --rooms pr-review`
//! prints a fresh token once and the entry to paste.

mod file;
mod principal;
mod principals;

pub use file::{InvalidPrincipal, MAX_PRINCIPAL_NAME, PrincipalsFileError};
pub use principal::{Forbidden, Operation, Principal, Role, RoomScope, UnknownRole};
pub use principals::{AuthError, Principals, PrincipalsBuilder, RateLimit, token_digest};
