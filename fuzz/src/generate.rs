//! Inputs for the stable driver: a deterministic mix of random bytes, JSON token soup,
//! byte-level mutations of valid seeds, and structured mutations of them (one node replaced
//! by random JSON, unknown keys, removed keys, deep nesting, huge and hostile strings,
//! numbers out of range). libFuzzer does better with coverage feedback; this runs anywhere.

use serde_json::{Map, Value, json};

/// SplitMix64: small, seedable, good enough to spread inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True `k` times in `n`.
    pub fn chance(&mut self, k: usize, n: usize) -> bool {
        self.below(n) < k
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

pub const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "a\r\nBcc: victim@example.com",
    "\u{202E}gnp.exe",
    "nul\u{0}byte",
    "\u{1b}[2J",
    "",
    " ",
    "😀\u{fe0f}",
    "\u{feff}",
    "\u{d7ff}\u{e000}\u{fffd}",
    "aws.cloudwatch",
    "CloudWatch Alarm State Change",
    "rds-instance",
    "app+database",
    "ALARM",
    "2024-05-01T12:00:00.000+0000",
    "2999-01-01T00:00:00Z",
    "https://a.example.com/",
];

const KEYS: &[&str] = &[
    "service",
    "databases",
    "images",
    "cluster",
    "smoke",
    "approval",
    "polling",
    "triggers",
    "kind",
    "id",
    "repository",
    "release_tag",
    "stable_tag",
    "registry_id",
    "name",
    "namespace",
    "deployments",
    "http",
    "sql",
    "alarms",
    "url",
    "expect_status",
    "timeout_ms",
    "retries",
    "body_regex",
    "database",
    "secret_arn",
    "query",
    "expect_rows",
    "expect_value",
    "timeout_minutes",
    "escalate_after_minutes",
    "interval_seconds",
    "max_wait_minutes",
    "alarm_scope",
    "reason",
    "scope",
    "mode",
    "cutoff",
    "release",
    "requested_by",
    "source",
    "detail-type",
    "detail",
    "alarmName",
    "state",
    "previousState",
    "value",
    "timestamp",
    "resources",
    "a.b",
    "x[0]",
];

/// Bytes that mean something to a JSON parser, spliced into inputs.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\n",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "1.5",
    "NaN",
    "\"service\"",
    "\"databases\"",
    "\"source\"",
    "\"detail\"",
    "\"aws.cloudwatch\"",
    " ",
    "\n",
    "\u{0}",
    "\u{feff}",
];

pub fn string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => rng.pick(HOSTILE).to_string(),
        4..=6 => (0..rng.below(40))
            .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        7 | 8 => (0..1 + rng.below(30))
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect(),
        // 100 KB, rarely: it costs.
        _ if rng.chance(1, 10) => format!("{}{}", rng.pick(HOSTILE), "A".repeat(100_000)),
        _ => "B".repeat(rng.below(3000)),
    }
}

pub fn number(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!(rng.next_u64()),
        1 => json!(rng.next_u64() as i64),
        2 => json!(f64::from_bits(rng.next_u64())),
        _ => rng
            .pick(&[
                json!(0),
                json!(-1),
                json!(1),
                json!(u64::MAX),
                json!(i64::MIN),
                json!(4_294_967_296u64),
                json!(65_536),
                json!(1e300),
                json!(0.5),
                json!(900),
                json!(901),
            ])
            .clone(),
    }
}

pub fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(1, 2)),
        2 => number(rng),
        3 => Value::String(string(rng)),
        4 => Value::Array((0..rng.below(5)).map(|_| value(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.below(5))
                .map(|_| (key(rng), value(rng, depth - 1)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn key(rng: &mut Rng) -> String {
    if rng.chance(3, 4) {
        rng.pick(KEYS).to_string()
    } else {
        string(rng)
    }
}

/// Paths to every node, as (key or index) steps.
fn nodes(doc: &Value) -> Vec<Vec<Value>> {
    fn walk(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(at.clone());
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    at.push(json!(k));
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push(json!(i));
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(doc: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(doc, |v, step| match step {
        Value::String(k) => &mut v[k.as_str()],
        step => &mut v[step.as_u64().unwrap_or(0) as usize],
    })
}

/// One structured change to a JSON document.
pub fn mutate_json(rng: &mut Rng, doc: &mut Value) {
    let all = nodes(doc);
    let at = rng.pick(&all).clone();
    match rng.below(6) {
        0 | 1 => *node_mut(doc, &at) = value(rng, 3),
        2 => {
            let k = key(rng);
            let v = value(rng, 2);
            if let Value::Object(map) = node_mut(doc, &at) {
                map.insert(k, v);
            } else {
                *node_mut(doc, &at) = json!({ k: v });
            }
        }
        3 => {
            if let Some((last, parent)) = at.split_last() {
                match (node_mut(doc, parent), last) {
                    (Value::Object(map), Value::String(k)) => {
                        map.shift_remove(k);
                    }
                    (Value::Array(items), i) => {
                        let i = i.as_u64().unwrap_or(0) as usize;
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        4 => {
            let place = node_mut(doc, &at);
            let mut v = place.take();
            for d in 0..1 + rng.below(120) {
                v = if d % 2 == 0 {
                    json!([v])
                } else {
                    json!({ "a": v })
                };
            }
            *place = v;
        }
        _ => *node_mut(doc, &at) = Value::String(string(rng)),
    }
}

/// Byte-level changes: flips, interesting tokens, cuts, duplicated ranges.
pub fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let token = rng.pick(TOKENS).as_bytes();
                data.splice(i..i, token.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let end = (i + 1 + rng.below(32)).min(len);
                data.drain(i..end);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let end = (i + 1 + rng.below(64)).min(len);
                let chunk = data[i..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            _ => data.truncate(rng.below(len + 1)),
        }
    }
}

/// A JSON input for the plan or request target, from `seeds` (JSON documents).
pub fn json_input(rng: &mut Rng, seeds: &[Value]) -> Vec<u8> {
    match rng.below(20) {
        0..=2 => {
            let n = rng.below(600);
            rng.bytes(n)
        }
        3..=5 => (0..rng.below(60))
            .flat_map(|_| rng.pick(TOKENS).as_bytes().to_vec())
            .collect(),
        6..=12 => {
            let mut data = serde_json::to_vec(rng.pick(seeds)).expect("serializes");
            mutate_bytes(rng, &mut data);
            data
        }
        _ => {
            let mut doc = rng.pick(seeds).clone();
            for _ in 0..1 + rng.below(3) {
                mutate_json(rng, &mut doc);
            }
            if rng.chance(1, 2) {
                serde_json::to_vec_pretty(&doc)
            } else {
                serde_json::to_vec(&doc)
            }
            .expect("serializes")
        }
    }
}

/// An input for the approval link target (see `targets::approval_link`).
pub fn link_input(rng: &mut Rng) -> Vec<u8> {
    let mut data = Vec::new();
    if rng.chance(1, 4) {
        // Offered as a link: random base64url text of link-like length, or anything.
        data.push(0);
        if rng.chance(1, 2) {
            let len = rng.below(700);
            data.extend((0..len).map(|_| *rng.pick(crate::targets::ALPHABET)));
        } else {
            data.extend(string(rng).into_bytes());
        }
        return data;
    }
    data.push(1 + rng.below(255) as u8);
    data.extend(rng.bytes(4));
    for i in 0..6 {
        if i > 0 {
            data.push(0xFF);
        }
        data.extend(string(rng).into_bytes());
    }
    if rng.chance(1, 8) {
        mutate_bytes(rng, &mut data);
    }
    data
}

pub fn plan_seeds() -> Vec<Value> {
    [
        include_str!("../corpus/plan/mint-replica.json"),
        include_str!("../corpus/plan/minimal.json"),
    ]
    .iter()
    .map(|t| serde_json::from_str(t).expect("seed parses"))
    .collect()
}

pub fn request_seeds() -> Vec<Value> {
    [
        include_str!("../corpus/request/manual.json"),
        include_str!("../corpus/request/empty.json"),
        include_str!("../corpus/request/alarm.json"),
    ]
    .iter()
    .map(|t| serde_json::from_str(t).expect("seed parses"))
    .collect()
}
