//! The principals of the authorization matrices: one per role, each known by
//! the token `t-{role}`; all but the admin and the reporter reach only the
//! room `alpha`, and the operator may read payloads.

use hookroom::auth::{Principal, Principals, Role, RoomScope};

/// The matrix's principals.
pub fn one_per_role() -> Principals {
    let alpha = || RoomScope::only(["alpha"]);
    Principals::builder()
        .principal(Principal::new("root", Role::Admin), ["t-admin"])
        .principal(
            Principal::new("oncall", Role::Operator)
                .with_rooms(alpha())
                .with_payloads(true),
            ["t-operator"],
        )
        .principal(
            Principal::new("watcher", Role::Viewer).with_rooms(alpha()),
            ["t-viewer"],
        )
        .principal(
            Principal::new("agent", Role::Agent).with_rooms(alpha()),
            ["t-agent"],
        )
        .principal(
            Principal::new("pdf-reporter", Role::Reporter),
            ["t-reporter"],
        )
        .build()
}
