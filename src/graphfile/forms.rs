//! What reading and writing graph files share about the format's tagged JSON objects: the
//! base64 of `{"bytes"}`, the field of `{"map"}`, and when a map is written wrapped in it.

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The field of a map computation, and of a map written wrapped.
pub(crate) const MAP_TAG: &str = "map";

/// The names of the format's tagged objects (and of the command's error document). A map
/// whose only entry has one of these names is written wrapped, `{"map": {name: ...}}`, so it
/// cannot be read as that form (docs/graph-format.md, "Maps").
const TAGS: &[&str] = &[
    "bytes", "pointer", "map", "lit", "ref", "fn", "args", "kwargs", "error",
];

/// Whether `map` is written wrapped in `{"map": ...}` (see `TAGS`).
pub(crate) fn wrapped(map: &crate::value::Map<'_>) -> bool {
    map.len() == 1 && map.name(0).is_some_and(|n| TAGS.contains(&n))
}
