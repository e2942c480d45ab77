//! What a graph file's document holds besides the graph — `plugins` and `keys`, small, read as
//! JSON — and opening its plugins: shared by the one pass and the exact passes.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};
use crate::plugin::Plugin;

/// How deeply a graph file may nest (`graphfile::MAX_FILE_DEPTH`).
pub(super) const MAX_FILE_DEPTH: usize = crate::abi::DASKR_GRAPH_FILE_MAX_DEPTH as usize;

/// What the document holds besides the graph (small: read as JSON).
#[derive(Default)]
pub(super) struct Top {
    pub(super) plugins: Option<Vec<(String, Json)>>,
    pub(super) keys: Option<Json>,
}

/// `plugins`: alias -> path, in file order, a repeated alias kept (to be refused).
pub(super) struct PluginsSeed;

impl<'de> DeserializeSeed<'de> for PluginsSeed {
    type Value = Vec<(String, Json)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PluginsSeed {
    type Value = Vec<(String, Json)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// Opens the file's plugins, in file order.
pub(super) fn load_plugins(
    entries: &[(String, Json)],
    base_dir: &Path,
) -> Result<HashMap<String, Plugin>> {
    let mut plugins: HashMap<String, Plugin> = HashMap::with_capacity(entries.len());
    for (alias, path) in entries {
        let at = format!("plugins.{alias}");
        if plugins.contains_key(alias) {
            // Two paths for one alias: which one a task runs would depend on the reader.
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!("{at}: the alias is declared twice"),
            ));
        }
        if alias.is_empty() || alias.contains(':') {
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!("{at}: an alias must be non-empty and hold no ':'"),
            ));
        }
        let Json::String(path) = path else {
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!(
                    "{at}: expected the path of a plugin library (a string), got {}",
                    json_kind(path)
                ),
            ));
        };
        let plugin = Plugin::open(base_dir.join(path)).map_err(|e| Error {
            message: format!("{at}: {}", e.message),
            ..e
        })?;
        plugins.insert(alias.clone(), plugin);
    }
    Ok(plugins)
}

/// What kind of JSON value `v` is, for error messages.
pub(super) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
