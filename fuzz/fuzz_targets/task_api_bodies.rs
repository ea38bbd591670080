//! Task API request bodies: every reader takes any bytes without panicking,
//! and a body it accepts reads back after serializing (what a client
//! sends): the same, apart from free-form JSON values, whose floats
//! serde_json reads best-effort.
#![no_main]

use hookroom::api::task::{
    AskBody, ClaimBody, DoneBody, FailBody, HeartbeatBody, InputBody, JoinRequest, TokenBody,
};
use libfuzzer_sys::fuzz_target;

macro_rules! round_trip {
    ($data:expr, $($body:ty),+) => {$(
        if let Ok(body) = <$body>::from_json($data) {
            let json = serde_json::to_vec(&body).expect("a read body serializes");
            let again = <$body>::from_json(&json).expect("a serialized body reads back");
            assert_eq!(again, body);
        }
    )+};
}

fuzz_target!(|data: &[u8]| {
    round_trip!(
        data,
        JoinRequest,
        ClaimBody,
        HeartbeatBody,
        FailBody,
        TokenBody,
        AskBody
    );
    if let Ok(body) = DoneBody::from_json(data) {
        let json = serde_json::to_vec(&body).expect("a read body serializes");
        let again = DoneBody::from_json(&json).expect("a serialized body reads back");
        assert_eq!(again.claim_token, body.claim_token);
        assert_eq!(again.result.is_some(), body.result.is_some());
    }
    if let Ok(body) = InputBody::from_json(data) {
        let json = serde_json::to_vec(&body).expect("a read body serializes");
        InputBody::from_json(&json).expect("a serialized body reads back");
    }
});
