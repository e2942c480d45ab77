//! The binary value encoding: how values cross process and machine boundaries (the process
//! and distributed schedulers). Compact, self-delimiting, versioned, and safe to decode from
//! untrusted bytes: every malformed input is an error, never a panic, and nesting is bounded.
//! The format is specified in docs/value-encoding.md; keep the two in step.
//!
//! ```text
//! message  = version:u8 (= 1) value
//! value    = 0x00                          null
//!          | 0x01 | 0x02                   false | true
//!          | 0x03 zigzag-varint            int64
//!          | 0x04 f64-le (8 bytes)         float64
//!          | 0x05 varint-len utf8-bytes    string
//!          | 0x06 varint-len bytes         bytes
//!          | 0x07 varint-count value*      list (nesting at most MAX_NESTING)
//!          | 0x08 varint-count (varint-len utf8-bytes value)*
//!                                          map: names distinct, in order (nesting as lists)
//! varint   = unsigned LEB128, at most 10 bytes
//! ```
//! Pointer values cannot be encoded: their object lives in one address space.

use crate::error::{Error, ErrorKind, Result};
use std::sync::Arc;

use crate::value::{Names, Value, MAX_NESTING};

/// The format version written first in every message.
pub const ENCODING_VERSION: u8 = 1;

const NULL: u8 = 0x00;
const FALSE: u8 = 0x01;
const TRUE: u8 = 0x02;
const INT: u8 = 0x03;
const FLOAT: u8 = 0x04;
const STR: u8 = 0x05;
const BYTES: u8 = 0x06;
const LIST: u8 = 0x07;
const MAP: u8 = 0x08;

/// Encodes `value` as a message (version byte first).
pub fn encode(value: &Value) -> Result<Vec<u8>> {
    let mut out = vec![ENCODING_VERSION];
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends `value` (without a version byte) to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Float(x) => {
            out.push(FLOAT);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Str(_) => {
            let s = value.as_str().unwrap_or_default();
            out.push(STR);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(_) => {
            let b = value.as_bytes().unwrap_or_default();
            out.push(BYTES);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::List(_) => {
            let items = value.as_list().unwrap_or_default();
            out.push(LIST);
            put_varint(out, items.len() as u64);
            for item in items {
                encode_into(item, out)?;
            }
        }
        Value::Map(_) => {
            let map = value.as_map().expect("a map");
            out.push(MAP);
            put_varint(out, map.len() as u64);
            for (name, v) in map.iter() {
                put_varint(out, name.len() as u64);
                out.extend_from_slice(name.as_bytes());
                encode_into(v, out)?;
            }
        }
        Value::Pointer(p) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "a pointer value (type '{}') cannot leave its process; use the threads scheduler for it",
                    p.tag()
                ),
            ))
        }
    }
    Ok(())
}

/// Appends `x` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Decodes a whole message; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader::new(bytes);
    let version = r.byte()?;
    if version != ENCODING_VERSION {
        return Err(r.error(format!(
            "unsupported encoding version {version} (this library reads version {ENCODING_VERSION})"
        )));
    }
    let v = r.value(0)?;
    if r.at != bytes.len() {
        return Err(r.error(format!("{} bytes after the value", bytes.len() - r.at)));
    }
    Ok(v)
}

/// Decodes one value (no version byte) from the front of `bytes`; returns it and the bytes
/// it used.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize)> {
    let mut r = Reader::new(bytes);
    let v = r.value(0)?;
    Ok((v, r.at))
}

/// Reads daskr's binary formats (this encoding, and the messages of `wire` built on it),
/// never trusting them: every malformed input is an error saying at which byte.
pub struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
    /// What is being read, for errors ("encoded value", "message").
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of an encoded value.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader::labelled(bytes, "encoded value")
    }

    /// A reader whose errors call what it reads `what`.
    pub fn labelled(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, at: 0, what }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    pub fn error(&self, what: String) -> Error {
        Error::invalid_argument(format!(
            "malformed {} at byte {}: {what}",
            self.what, self.at
        ))
    }

    /// The next byte, left unread (None at the end).
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    pub fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.error("unexpected end".into()))?;
        self.at += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(self.error(format!("length {n} runs past the end ({left} bytes left)")));
        }
        let s = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut x = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.error("varint overflows 64 bits".into()));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(self.error("varint longer than 10 bytes".into()))
    }

    /// A count of items that each take at least one byte: bounded by the bytes left, so a
    /// hostile count cannot make a reader reserve memory it will never fill.
    pub fn count(&mut self) -> Result<usize> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(self.error(format!("count {n} runs past the end ({left} bytes left)")));
        }
        Ok(n as usize)
    }

    /// A UTF-8 string: its byte length, then the bytes.
    pub fn string(&mut self) -> Result<&'a str> {
        let n = self.varint()?;
        let at = self.at;
        let s = self.take(n)?;
        std::str::from_utf8(s).map_err(|_| {
            self.at = at;
            self.error("string is not UTF-8".into())
        })
    }

    /// One value (no version byte).
    pub(crate) fn value(&mut self, depth: u32) -> Result<Value> {
        let tag = self.byte()?;
        Ok(match tag {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => {
                let z = self.varint()?;
                Value::Int((z >> 1) as i64 ^ -((z & 1) as i64))
            }
            FLOAT => Value::Float(f64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            STR => {
                let n = self.varint()?;
                let at = self.at;
                let s = self.take(n)?;
                Value::str_from_utf8(s).map_err(|_| {
                    self.at = at;
                    self.error("string is not UTF-8".into())
                })?
            }
            BYTES => {
                let n = self.varint()?;
                Value::bytes(self.take(n)?)
            }
            LIST => {
                if depth >= MAX_NESTING {
                    return Err(self.error(format!("lists nest deeper than {MAX_NESTING}")));
                }
                let n = self.varint()?;
                // Every item takes at least one byte: a count beyond that is a lie.
                if n > (self.bytes.len() - self.at) as u64 {
                    return Err(self.error(format!("list of {n} items runs past the end")));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::list(items)?
            }
            MAP => {
                if depth >= MAX_NESTING {
                    return Err(self.error(format!("maps nest deeper than {MAX_NESTING}")));
                }
                let at = self.at;
                // Every entry takes at least two bytes (a name's length, a value).
                let n = self.varint()?;
                if n > (self.bytes.len() - self.at) as u64 / 2 {
                    return Err(self.error(format!("map of {n} entries runs past the end")));
                }
                let mut names = Vec::with_capacity(n as usize);
                let mut values = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    names.push(self.string()?);
                    values.push(self.value(depth + 1)?);
                }
                let names = Names::new(names).map_err(|e| {
                    self.at = at;
                    self.error(e.message)
                })?;
                Value::map_of(Arc::new(names), values)?
            }
            other => return Err(self.error(format!("unknown tag 0x{other:02x}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    fn sample() -> Value {
        Value::list(vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Float(-2.5),
            Value::str("héllo"),
            Value::bytes(&[0, 255, 7]),
            Value::list(vec![Value::list(vec![]).unwrap(), Value::str("")]).unwrap(),
            Value::map(vec![
                ("file", Value::str("a.csv")),
                ("", Value::map::<&str>(vec![]).unwrap()),
                ("readings", Value::list(vec![Value::Int(3)]).unwrap()),
                ("é\0", Value::map(vec![("x", Value::Float(0.5))]).unwrap()),
            ])
            .unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn round_trips() {
        let v = sample();
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], ENCODING_VERSION);
        assert_eq!(decode(&bytes).unwrap(), v);
        // Small scalars stay small.
        assert_eq!(encode(&Value::Int(5)).unwrap(), vec![1, INT, 10]);
    }

    #[test]
    fn pointers_do_not_encode() {
        let p = Value::pointer(std::ptr::null_mut::<c_void>(), "matrix", None);
        let e = encode(&p).unwrap_err();
        assert!(
            e.message.contains("matrix") && e.message.contains("threads"),
            "{}",
            e.message
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            for x in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = x;
                let _ = decode(&b); // must not panic
            }
        }
        assert!(decode(&[1, 0x0a])
            .unwrap_err()
            .message
            .contains("unknown tag"));
        assert!(decode(&[2, 0]).unwrap_err().message.contains("version 2"));
        assert!(decode(&[1, 0, 0])
            .unwrap_err()
            .message
            .contains("after the value"));
        assert!(decode(&[1, LIST, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn maps_keep_their_order_and_refuse_a_name_twice() {
        let m = Value::map(vec![("b", Value::Int(1)), ("a", Value::Int(2))]).unwrap();
        let bytes = encode(&m).unwrap();
        assert_eq!(bytes, vec![1, MAP, 2, 1, b'b', INT, 2, 1, b'a', INT, 4]);
        let back = decode(&bytes).unwrap();
        let names: Vec<&str> = back.as_map().unwrap().iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "a"]);
        let twice = [1, MAP, 2, 1, b'a', NULL, 1, b'a', NULL];
        let e = decode(&twice).unwrap_err();
        assert!(e.message.contains("\"a\" is given twice"), "{}", e.message);
        assert!(
            decode(&[1, MAP, 1, 1, 0xff, NULL]).is_err(),
            "a name not UTF-8"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = vec![1u8];
        deep.extend(std::iter::repeat_n([LIST, 1], 100_000).flatten());
        deep.push(NULL);
        let e = decode(&deep).unwrap_err();
        assert!(e.message.contains("nest"), "{}", e.message);
        let mut deep = vec![1u8];
        deep.extend(std::iter::repeat_n([MAP, 1, 0], 100_000).flatten());
        deep.push(NULL);
        let e = decode(&deep).unwrap_err();
        assert!(e.message.contains("nest"), "{}", e.message);
    }
}
