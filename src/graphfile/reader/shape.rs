//! Reading one JSON value by what kind it is: a [`Shape`] says what a reader does with each
//! kind, and [`Any`] drives it from serde_json's deserializer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::builder::Built;

/// What a reader of one JSON value does with each kind of value. The kinds it does not take
/// are a problem saying what it got (the value is still read through, so the parse goes on).
pub(super) trait Shape<'de>: Sized {
    type Out;

    /// The problem for a value of the wrong kind (`got`: "a number", ...).
    fn wrong(self, got: &str) -> Built<Self::Out>;

    fn null(self) -> Built<Self::Out> {
        self.wrong("null")
    }
    fn boolean(self, _: bool) -> Built<Self::Out> {
        self.wrong("a boolean")
    }
    fn int(self, _: i64) -> Built<Self::Out> {
        self.wrong("a number")
    }
    fn float(self, _: f64) -> Built<Self::Out> {
        self.wrong("a number")
    }
    /// `borrowed`: the text of the string is the document's own (no escapes in it).
    fn string(self, _: &str, _borrowed: bool) -> Built<Self::Out> {
        self.wrong("a string")
    }
    fn array<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Built<Self::Out>, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(self.wrong("an array"))
    }
    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Built<Self::Out>, A::Error> {
        while map.next_key_seed(StrSeed)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(self.wrong("an object"))
    }
}

/// A `Shape` as a serde seed.
pub(super) struct Any<S>(pub(super) S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Any<S> {
    type Value = Built<S::Out>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Any<S> {
    type Value = Built<S::Out>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(self.0.null())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(self.0.boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(self.0.int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        // Integers that fit are int64, others float64.
        Ok(match i64::try_from(v) {
            Ok(i) => self.0.int(i),
            Err(_) => self.0.float(v as f64),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(self.0.float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(self.0.string(v, true))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(self.0.string(v, false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        self.0.array(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        self.0.object(map)
    }
}

/// A string, kept borrowed from the document when it has no escapes.
pub(super) struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Drains the rest of a sequence after a problem (or a put-off) in one of its items.
pub(super) fn drain_seq<'de, A: SeqAccess<'de>>(seq: &mut A) -> std::result::Result<(), A::Error> {
    while seq.next_element_seed(Skip)?.is_some() {}
    Ok(())
}

pub(super) fn drain_map<'de, A: MapAccess<'de>>(map: &mut A) -> std::result::Result<(), A::Error> {
    while map.next_key_seed(StrSeed)?.is_some() {
        map.next_value_seed(Skip)?;
    }
    Ok(())
}

/// Any JSON value, checked as a JSON tree would be (numbers in range, strings valid), kept
/// nowhere.
pub(super) struct Check;

impl<'de> Shape<'de> for Check {
    type Out = ();
    fn wrong(self, _: &str) -> Built<()> {
        Ok(())
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Built<()>, A::Error> {
        while seq.next_element_seed(Any(Check))?.is_some() {}
        Ok(Ok(()))
    }
    fn object<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Built<()>, A::Error> {
        while map.next_key_seed(StrSeed)?.is_some() {
            map.next_value_seed(Any(Check))?.ok();
        }
        Ok(Ok(()))
    }
}

/// Reads a value through, checked as `Check` does. Values a reader skips (after a problem or
/// a put-off, or fields it ignores) are checked too, nesting depth included: serde's
/// `IgnoredAny` does not count depth, and an entry put off is read again on its own, where
/// serde_json's limit no longer counts the document's two levels around it.
pub(super) struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        Any(Check).deserialize(d).map(drop)
    }
}
