//! One function per fuzz target: bytes in, invariants checked (a panic is a finding).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rollback_core::approval_link::{Decision, LinkKey, LinkPayload, LinkSummary};
use rollback_core::request::Scope;

use crate::invariants::{self, Outcome};

/// A fixed key: the fuzzer must never produce a link that opens without sealing it.
pub static KEY: LazyLock<LinkKey> = LazyLock::new(|| LinkKey::from_bytes(&[7u8; 32]));

/// A fixed clock, so a failing input replays the same way.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_566_000, 0).expect("a valid instant")
}

/// Plan text, as `rollbackctl` and the plan function read it.
pub fn plan(data: &[u8]) -> Outcome {
    invariants::check_plan_text(&String::from_utf8_lossy(data))
}

/// An execution's start input (alarm event or manual start), or free text in its fields.
pub fn request(data: &[u8]) -> Outcome {
    invariants::check_request_text(&String::from_utf8_lossy(data))
}

/// The link alphabet (URL-safe base64).
pub const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `data[0] % 4 == 0`: the rest is offered as a link. Otherwise `data[1..5]` says how to
/// change a link sealed from a payload built out of the remaining bytes (fields split at
/// 0xFF): 1 = replace one character, 2 = cut it, 3 = append text.
pub fn approval_link(data: &[u8]) -> Outcome {
    let Some((&mode, rest)) = data.split_first() else {
        return invariants::check_link_text(&KEY, "", now());
    };
    if mode % 4 == 0 || rest.len() < 4 {
        return invariants::check_link_text(&KEY, &String::from_utf8_lossy(rest), now());
    }
    let (spec, fields) = rest.split_at(4);
    let mut parts = fields
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut next = || parts.next().unwrap_or_default();
    let payload = LinkPayload {
        task_token: next(),
        decision: if mode & 0x10 == 0 {
            Decision::Approve
        } else {
            Decision::Reject
        },
        scope: if mode & 0x20 == 0 {
            Scope::App
        } else {
            Scope::AppAndDatabase
        },
        expires_at: i64::from(i32::from_le_bytes([spec[0], spec[1], spec[2], spec[3]])),
        execution: next(),
        fingerprint: next(),
        summary: LinkSummary {
            service: next(),
            reason: next(),
            lines: next().lines().map(str::to_owned).collect(),
        }
        .bounded(),
    };
    let Some(token) = invariants::check_link_round_trip(&KEY, &payload) else {
        return Outcome::Rejected;
    };
    let at = usize::from(u16::from_le_bytes([spec[0], spec[1]])) % token.len();
    let altered = match mode % 4 {
        1 => {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = ALPHABET[usize::from(spec[2]) % ALPHABET.len()];
            String::from_utf8(bytes).expect("ASCII")
        }
        2 => token[..at].to_owned(),
        _ => format!("{token}{}", String::from_utf8_lossy(spec)),
    };
    invariants::check_link_mutation(&KEY, &token, &payload, &altered)
}
