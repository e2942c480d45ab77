//! A byte-level mutator driven by a seeded RNG: the stable-toolchain stand-in for libFuzzer's
//! mutation engine. It has no coverage feedback; instead the harness keeps every input whose
//! *outcome* (the error it produced, with numbers blanked) was not seen before, so inputs that
//! reach a new error path become parents of later inputs.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore};

/// Bytes that make readers take unusual paths: boundaries of lengths, varints and UTF-8.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x07, 0x10, 0x13, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff,
];

/// Varints that are legal but absurd (huge counts and lengths), or illegal (11 bytes).
const VARINTS: &[&[u8]] = &[
    &[0xff, 0xff, 0xff, 0xff, 0x0f], // u32::MAX
    &[0x80, 0x80, 0x80, 0x80, 0x10], // 2^32
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // u64::MAX
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ], // too long
    &[0x80, 0x00],                   // 0, not minimal
    &[0xff, 0x7f],
];

/// Applies 1..=4 random mutations to `input` and returns the result. `dict` holds tokens of
/// the format (JSON syntax, tags); `other` is another corpus entry to splice from.
pub fn mutate(rng: &mut SmallRng, input: &[u8], other: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let n = 1 + rng.random_range(0..4);
    for _ in 0..n {
        mutate_once(rng, &mut out, other, dict);
    }
    out
}

fn mutate_once(rng: &mut SmallRng, v: &mut Vec<u8>, other: &[u8], dict: &[&[u8]]) {
    let len = v.len();
    let at = |rng: &mut SmallRng, n: usize| if n == 0 { 0 } else { rng.random_range(0..n) };
    match rng.random_range(0..12) {
        0 if len > 0 => {
            let i = at(rng, len);
            v[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = at(rng, len);
            v[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        2 if len > 0 => {
            let i = at(rng, len);
            v[i] = rng.next_u32() as u8;
        }
        3 => {
            // Insert a few random bytes.
            let i = at(rng, len + 1);
            let k = 1 + rng.random_range(0..8);
            let bytes: Vec<u8> = (0..k).map(|_| rng.next_u32() as u8).collect();
            v.splice(i..i, bytes);
        }
        4 if len > 0 => {
            // Delete a range.
            let i = at(rng, len);
            let k = 1 + at(rng, (len - i).min(32));
            v.drain(i..i + k);
        }
        5 if len > 0 => {
            // Duplicate a range in place (repeats structure: deeper nesting, longer lists).
            let i = at(rng, len);
            let k = 1 + at(rng, (len - i).min(64));
            let chunk = v[i..i + k].to_vec();
            let j = at(rng, len + 1);
            v.splice(j..j, chunk);
        }
        6 if !other.is_empty() => {
            // Splice: our head, the other input's tail.
            let i = at(rng, len + 1);
            let j = at(rng, other.len());
            v.truncate(i);
            v.extend_from_slice(&other[j..]);
        }
        7 if !dict.is_empty() => {
            let t = dict[rng.random_range(0..dict.len())];
            let i = at(rng, len + 1);
            v.splice(i..i, t.iter().copied());
        }
        8 if !dict.is_empty() && len > 0 => {
            // Overwrite with a token.
            let t = dict[rng.random_range(0..dict.len())];
            let i = at(rng, len);
            let end = (i + t.len()).min(len);
            v.splice(i..end, t.iter().copied());
        }
        9 => {
            let t = VARINTS[rng.random_range(0..VARINTS.len())];
            let i = at(rng, len + 1);
            if len > 0 && rng.random_bool(0.5) {
                // Replace one byte (often a length or count) by the varint.
                let i = i.min(len - 1);
                v.splice(i..i + 1, t.iter().copied());
            } else {
                v.splice(i..i, t.iter().copied());
            }
        }
        10 if len > 0 => {
            // Truncate.
            let i = at(rng, len);
            v.truncate(i);
        }
        _ if len > 1 => {
            // Swap two bytes.
            let (i, j) = (at(rng, len), at(rng, len));
            v.swap(i, j);
        }
        _ => v.push(rng.next_u32() as u8),
    }
}

/// The outcome of one input with digits and quoted names blanked, so "byte 17" and "byte 18",
/// or "key 'a'" and "key 'b'", count as one outcome.
pub fn signature(outcome: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in outcome.chars().take(120) {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            _ if quoted => {}
            _ if c.is_ascii_digit() => out.push('#'),
            _ => out.push(c),
        }
    }
    out
}
