//! `RAMPART_` environment variables override configuration keys: `RAMPART_SERVER__PORT=9090` sets
//! `server.port`, `RAMPART_PROXY__UPSTREAMS__0__SERVERS__0__HOST=10.0.0.5` sets an item of a list. Segments are
//! separated by a double underscore (keys contain single ones) and are case-insensitive; values are read as
//! YAML scalars or flow collections (`9090`, `true`, `[10.0.0.0/8, 192.0.2.1]`).
//!
//! Only variables whose first segment is a top-level section are overrides, so unrelated `RAMPART_*`
//! variables (such as `RAMPART_CONFIG`) are left alone, while a typo inside a section is reported as an
//! unknown key naming the variable.

use serde_json::{Map, Value};

use super::path::{KeyPath, Segment};

pub const PREFIX: &str = "RAMPART_";

/// An applied override: the variable and the path it set.
#[derive(Clone, Debug)]
pub struct Override {
    pub var: String,
    pub path: KeyPath,
}

/// A variable that could not be applied, with the reason.
#[derive(Clone, Debug)]
pub struct OverrideError {
    pub var: String,
    pub path: KeyPath,
    pub message: String,
}

/// Applies every override among `vars` to `doc`, returning those applied and those that failed.
pub fn apply(
    doc: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
    top_level_keys: &[&str],
) -> (Vec<Override>, Vec<OverrideError>) {
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    let mut vars: Vec<_> = vars.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    // Deterministic order, so that overlapping overrides (a list, then one of its items) apply the same way
    // on every start.
    vars.sort();
    for (var, raw) in vars {
        let Some(path) = path_of(&var) else { continue };
        let Some(Segment::Key(first)) = path.segments().first() else {
            continue;
        };
        if !top_level_keys.contains(&first.as_str()) {
            continue;
        }
        match set(doc, &path, parse_value(&raw)) {
            Ok(()) => applied.push(Override { var, path }),
            Err(message) => failed.push(OverrideError { var, path, message }),
        }
    }
    (applied, failed)
}

fn path_of(var: &str) -> Option<KeyPath> {
    let rest = var.strip_prefix(PREFIX)?;
    let mut path = KeyPath::root();
    for seg in rest.split("__") {
        if seg.is_empty() {
            return None;
        }
        match seg.parse::<usize>() {
            Ok(i) => path = path.child_index(i),
            Err(_) => path.push_key(&seg.to_ascii_lowercase()),
        }
    }
    Some(path)
}

/// A value as YAML would read it; text YAML cannot parse stays a plain string.
fn parse_value(raw: &str) -> Value {
    serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn set(doc: &mut Value, path: &KeyPath, value: Value) -> Result<(), String> {
    let mut node = doc;
    let segs = path.segments();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        node = match seg {
            Segment::Key(k) => {
                if node.is_null() {
                    *node = Value::Object(Map::new());
                }
                let Value::Object(map) = node else {
                    return Err(format!("cannot set key `{k}`: the value above it is not a mapping"));
                };
                map.entry(k.clone()).or_insert(Value::Null)
            }
            Segment::Index(n) => {
                if node.is_null() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(items) = node else {
                    return Err(format!("cannot set item {n}: the value above it is not a list"));
                };
                if *n == items.len() {
                    items.push(Value::Null);
                }
                let len = items.len();
                items
                    .get_mut(*n)
                    .ok_or_else(|| format!("list index {n} is past the end (the list has {len} items)"))?
            }
        };
        if last {
            *node = value;
            return Ok(());
        }
    }
    Err("an override needs a key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(doc: &str, vars: &[(&str, &str)]) -> (Value, Vec<Override>, Vec<OverrideError>) {
        let mut v: Value = serde_saphyr::from_str(doc).unwrap_or(Value::Null);
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let (ok, err) = apply(&mut v, vars, &["server", "proxy", "xdp"]);
        (v, ok, err)
    }

    #[test]
    fn nested_keys_and_list_items_are_overridden_with_typed_values() {
        let (v, ok, err) = overlay(
            "server:\n  port: 8080\nproxy:\n  upstreams:\n    - name: a\n      servers: [{host: x, port: 1}]\n",
            &[
                ("RAMPART_SERVER__PORT", "9090"),
                ("RAMPART_PROXY__UPSTREAMS__0__SERVERS__0__HOST", "10.0.0.5"),
                ("RAMPART_XDP__DENY", "[10.0.0.0/8, 192.0.2.1]"),
            ],
        );
        assert!(err.is_empty(), "{err:?}");
        assert_eq!(ok.len(), 3);
        assert_eq!(v["server"]["port"], 9090);
        assert_eq!(v["proxy"]["upstreams"][0]["servers"][0]["host"], "10.0.0.5");
        assert_eq!(v["xdp"]["deny"][1], "192.0.2.1");
    }

    #[test]
    fn unrelated_variables_are_ignored() {
        let (_, ok, err) = overlay("{}", &[("RAMPART_CONFIG", "/etc/x.yaml"), ("OTHER", "1")]);
        assert!(ok.is_empty() && err.is_empty());
    }

    #[test]
    fn an_index_past_the_end_is_an_error_naming_the_variable() {
        let (_, _, err) = overlay(
            "proxy:\n  upstreams: []\n",
            &[("RAMPART_PROXY__UPSTREAMS__3__NAME", "x")],
        );
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].var, "RAMPART_PROXY__UPSTREAMS__3__NAME");
    }
}
