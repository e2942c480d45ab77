//! JSON taken as data (inside `{"lit": ...}`): arrays are lists, strings are strings, and an
//! object is a map — except the tagged forms `{"bytes": base64}` and `{"map": {...}}` (a map
//! written wrapped, see docs/graph-format.md "Maps"), and `{"pointer": tag}`, which is printed
//! but cannot be read.
//!
//! Scalars and arrays are read as they arrive. An object's meaning depends on how many entries
//! it has, known only at its end, so it is read whole first (as `Raw`) and then turned into a
//! value; objects are rare in data, so the hot paths never pay for it.

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::{MapAccess, SeqAccess};

use super::builder::{bad, At, Built, Step};
use super::shape::{drain_map, drain_seq, Any, Shape, StrSeed};
use crate::graphfile::forms::{B64, MAP_TAG};
use crate::value::{Names, Value};

/// A JSON value as data.
pub(super) struct DataShape;

impl<'de> Shape<'de> for DataShape {
    type Out = Value;
    fn wrong(self, got: &str) -> Built<Value> {
        bad(format!("unexpected {got}"))
    }
    fn null(self) -> Built<Value> {
        Ok(Value::Null)
    }
    fn boolean(self, v: bool) -> Built<Value> {
        Ok(Value::Bool(v))
    }
    fn int(self, v: i64) -> Built<Value> {
        Ok(Value::Int(v))
    }
    fn float(self, v: f64) -> Built<Value> {
        Ok(Value::Float(v))
    }
    fn string(self, s: &str, _: bool) -> Built<Value> {
        Ok(Value::str(s))
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Built<Value>, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Any(DataShape))? {
            match item {
                Ok(v) => values.push(v),
                Err(stop) => {
                    drain_seq(&mut seq)?;
                    return Ok(Err(stop).at(Step::Item(values.len())));
                }
            }
        }
        Ok(Value::list(values).or_else(|e| bad(e.message)))
    }
    fn object<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Built<Value>, A::Error> {
        Ok(RawShape.object(map)?.and_then(|raw| raw.into_value()))
    }
}

/// Data read through, to be interpreted once whole: objects keep every entry (a name given
/// twice included, to be refused), everything else is already a value.
enum Raw {
    Value(Value),
    List(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    /// The value this data stands for.
    fn into_value(self) -> Built<Value> {
        match self {
            Raw::Value(v) => Ok(v),
            Raw::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    values.push(item.into_value().at(Step::Item(i))?);
                }
                Value::list(values).or_else(|e| bad(e.message))
            }
            Raw::Object(mut entries) if entries.len() == 1 => {
                let (name, raw) = entries.pop().expect("one entry");
                match (name.as_str(), raw) {
                    ("bytes", Raw::Value(text)) if text.as_str().is_some() => {
                        match B64.decode(text.as_str().unwrap_or_default()) {
                            Ok(b) => Ok(Value::bytes(&b)),
                            Err(e) => bad(format!("not valid base64: {e}")),
                        }
                        .at(Step::Field("bytes"))
                    }
                    ("bytes", _) => bad("expected base64 text (a string)").at(Step::Field("bytes")),
                    ("pointer", _) => bad(
                        "a pointer value (printed as {\"pointer\": tag}) cannot be read back: \
                         its object lived in the process that printed it",
                    ),
                    (MAP_TAG, Raw::Object(inner)) => map(inner).at(Step::Field(MAP_TAG)),
                    (MAP_TAG, _) => bad(
                        "expected an object after \"map\" (a map of one entry named \"map\" is \
                         written {\"map\": {\"map\": ...}})",
                    ),
                    (_, raw) => map(vec![(name, raw)]),
                }
            }
            Raw::Object(entries) => map(entries),
        }
    }
}

/// The map of `entries`, as written (no tagged form at this level).
fn map(entries: Vec<(String, Raw)>) -> Built<Value> {
    let names = match Names::new(entries.iter().map(|(n, _)| n.as_str())) {
        Ok(names) => names,
        Err(e) => return bad(e.message),
    };
    let mut values = Vec::with_capacity(entries.len());
    for (name, raw) in entries {
        values.push(raw.into_value().at(Step::Entry(name))?);
    }
    Value::map_of(names.into(), values).or_else(|e| bad(e.message))
}

struct RawShape;

impl<'de> Shape<'de> for RawShape {
    type Out = Raw;
    fn wrong(self, got: &str) -> Built<Raw> {
        bad(format!("unexpected {got}"))
    }
    fn null(self) -> Built<Raw> {
        Ok(Raw::Value(Value::Null))
    }
    fn boolean(self, v: bool) -> Built<Raw> {
        Ok(Raw::Value(Value::Bool(v)))
    }
    fn int(self, v: i64) -> Built<Raw> {
        Ok(Raw::Value(Value::Int(v)))
    }
    fn float(self, v: f64) -> Built<Raw> {
        Ok(Raw::Value(Value::Float(v)))
    }
    fn string(self, s: &str, _: bool) -> Built<Raw> {
        Ok(Raw::Value(Value::str(s)))
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Built<Raw>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Any(RawShape))? {
            match item {
                Ok(v) => items.push(v),
                Err(stop) => {
                    drain_seq(&mut seq)?;
                    return Ok(Err(stop).at(Step::Item(items.len())));
                }
            }
        }
        Ok(Ok(Raw::List(items)))
    }
    fn object<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Built<Raw>, A::Error> {
        let mut entries = Vec::new();
        while let Some(name) = map.next_key_seed(StrSeed)? {
            let name: Cow<'_, str> = name;
            match map.next_value_seed(Any(RawShape))? {
                Ok(raw) => entries.push((name.into_owned(), raw)),
                Err(stop) => {
                    drain_map(&mut map)?;
                    return Ok(Err(stop).at(Step::Entry(name.into_owned())));
                }
            }
        }
        Ok(Ok(Raw::Object(entries)))
    }
}

/// `{"bytes": b64}`'s text.
pub(super) struct BytesShape;

impl<'de> Shape<'de> for BytesShape {
    type Out = Value;
    fn wrong(self, got: &str) -> Built<Value> {
        bad(format!("expected base64 text (a string), got {got}"))
    }
    fn string(self, s: &str, _: bool) -> Built<Value> {
        match B64.decode(s) {
            Ok(b) => Ok(Value::bytes(&b)),
            Err(e) => bad(format!("not valid base64: {e}")),
        }
    }
}
