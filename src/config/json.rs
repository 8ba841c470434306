//! Meters as JSON (the API, `meter import|export|show`), through the field table: the same
//! parsers and messages as the command line.

use super::error::{literal, quoted, ConfigError};
use super::fields::{Kind, FIELDS};
use super::meter::{Measurement, MeterConfig};
use super::profile::ProfileSpec;
use serde_json::{json, Map, Value};

/// How secrets appear in a meter's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Left out (exports).
    Omit,
    /// `"password_set": true` instead of the value (the API, `meter show`).
    SetOrNot,
}

/// The meter as JSON: every field but the secrets, typed; with the id if it has one.
pub fn to_json(m: &MeterConfig, secrets: Secrets) -> Value {
    let mut o = Map::new();
    if let (Some(id), Secrets::SetOrNot) = (m.id, secrets) {
        o.insert("id".into(), json!(id));
    }
    for f in FIELDS {
        let text = f.text(m);
        if f.secret {
            if secrets == Secrets::SetOrNot {
                o.insert(format!("{}_set", f.name), json!(text.is_some()));
            }
            continue;
        }
        let v = match (text, f.kind) {
            (None, _) => Value::Null,
            (Some(t), Kind::Int) => t.parse::<i64>().map_or(Value::String(t), |n| json!(n)),
            (Some(t), Kind::Bool) => json!(t == "true"),
            (Some(t), Kind::Text) => Value::String(t),
        };
        o.insert(f.name.into(), v);
    }
    o.insert("measurements".into(), measurements_json(&m.measurements));
    o.insert("profiles".into(), profiles_json(&m.profiles));
    Value::Object(o)
}

/// `[{"obis": ..., "every_s": N|null, "keys": {"OBIS": "key"}}]`
pub fn profiles_json(list: &[ProfileSpec]) -> Value {
    Value::Array(list.iter().map(profile_json).collect())
}

pub fn profile_json(p: &ProfileSpec) -> Value {
    let keys: Map<String, Value> = p
        .keys
        .iter()
        .map(|(c, k)| (c.to_string(), json!(k)))
        .collect();
    json!({"obis": p.obis.to_string(), "every_s": p.every_s, "keys": keys})
}

pub fn profile_from_json(item: &Value) -> Result<ProfileSpec, ConfigError> {
    let shape = || {
        ConfigError::field(
            "profiles",
            "each is {\"obis\": ..., \"every_s\": ..., \"keys\": {...}}",
        )
    };
    let o = item.as_object().ok_or_else(shape)?;
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "obis" | "every_s" | "keys"))
    {
        return Err(ConfigError::field(
            "profiles",
            format!("unknown field {}; known: obis, every_s, keys", quoted(k)),
        ));
    }
    let obis = match o.get("obis") {
        Some(v) => scalar("profiles", v)?.ok_or_else(shape)?,
        None => return Err(shape()),
    };
    let every = match o.get("every_s") {
        Some(v) => scalar("profiles", v)?,
        None => None,
    };
    let mut keys = Vec::new();
    match o.get("keys") {
        None | Some(Value::Null) => {}
        Some(Value::Object(k)) => {
            for (column, key) in k {
                let key = key.as_str().ok_or_else(|| {
                    ConfigError::field("profiles", format!("key of {column} must be text"))
                })?;
                keys.push((column.clone(), key.to_string()));
            }
        }
        Some(_) => {
            return Err(ConfigError::field(
                "profiles",
                "keys is {\"OBIS\": \"key\"}",
            ))
        }
    }
    ProfileSpec::from_parts(&obis, every.as_deref(), &keys)
}

pub fn profiles_from_json(v: &Value) -> Result<Vec<ProfileSpec>, ConfigError> {
    v.as_array()
        .ok_or_else(|| ConfigError::field("profiles", "expected a list"))?
        .iter()
        .map(profile_from_json)
        .collect()
}

pub fn measurements_json(list: &[Measurement]) -> Value {
    Value::Array(
        list.iter()
            .map(|x| {
                json!({"key": x.key, "obis": x.obis.to_string(), "class_id": x.class_id,
                       "attribute": x.attribute})
            })
            .collect(),
    )
}

/// A JSON scalar as the text a field parses (`None` for null: clear it).
fn scalar(field: &'static str, v: &Value) -> Result<Option<String>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(ConfigError::field(field, "expected a single value")),
    }
}

/// Sets the fields an object gives, in the table's order; anything unknown is refused.
pub fn apply_json(m: &mut MeterConfig, o: &Map<String, Value>) -> Result<(), ConfigError> {
    for key in o.keys() {
        let shown_by_us = key == "id"
            || key == "measurements"
            || key == "profiles"
            || FIELDS
                .iter()
                .any(|f| f.name == key || (f.secret && key == &format!("{}_set", f.name)));
        if !shown_by_us {
            let known: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
            return Err(ConfigError::new(literal(&format!(
                "unknown field {}; known: {}, measurements, profiles",
                quoted(key),
                known.join(", ")
            ))));
        }
    }
    for f in FIELDS {
        if let Some(v) = o.get(f.name) {
            f.apply(m, scalar(f.name, v)?.as_deref())?;
        }
    }
    if let Some(v) = o.get("measurements") {
        m.measurements = measurements_from_json(v)?;
    }
    if let Some(v) = o.get("profiles") {
        m.profiles = profiles_from_json(v)?;
    }
    Ok(())
}

pub fn measurements_from_json(v: &Value) -> Result<Vec<Measurement>, ConfigError> {
    let list = v
        .as_array()
        .ok_or_else(|| ConfigError::field("measurements", "expected a list"))?;
    list.iter()
        .map(|item| {
            let o = item.as_object().ok_or_else(|| {
                ConfigError::field("measurements", "each is {\"key\": ..., \"obis\": ...}")
            })?;
            if let Some(k) = o
                .keys()
                .find(|k| !matches!(k.as_str(), "key" | "obis" | "class_id" | "attribute"))
            {
                return Err(ConfigError::field(
                    "measurements",
                    format!(
                        "unknown field {}; known: key, obis, class_id, attribute",
                        quoted(k)
                    ),
                ));
            }
            let part = |k: &'static str, default: &str| -> Result<String, ConfigError> {
                Ok(match o.get(k) {
                    None => default.to_string(),
                    Some(v) => scalar("measurements", v)?.ok_or_else(|| {
                        ConfigError::field("measurements", format!("{k} cannot be null"))
                    })?,
                })
            };
            Measurement::from_parts(
                &part("key", "")?,
                &part("obis", "")?,
                &part("class_id", "3")?,
                &part("attribute", "2")?,
            )
        })
        .collect()
}

/// A new meter from JSON: the defaults, then what the object gives, then the combination.
pub fn from_json(v: &Value) -> Result<MeterConfig, ConfigError> {
    let o = v
        .as_object()
        .ok_or_else(|| ConfigError::new("a meter is a JSON object of fields"))?;
    let mut m = MeterConfig::default();
    apply_json(&mut m, o).map_err(|e| match o.get("name").and_then(Value::as_str) {
        Some(name) => e.of_meter(name),
        None => e,
    })?;
    m.validate()?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_strictness() {
        let v = json!({"name": "A", "host": "127.0.0.1", "port": 4061, "auth": "low",
                       "password": "pw", "enabled": "no", "server_physical": null});
        let m = from_json(&v).unwrap();
        assert_eq!((m.enabled, m.server_physical), (false, None));
        let out = to_json(&m, Secrets::SetOrNot);
        assert_eq!(out["password_set"], json!(true));
        assert!(!out.to_string().contains("pw"));
        let back = from_json(&to_json(&m, Secrets::SetOrNot));
        assert!(back.unwrap_err().to_string().contains("needs a password"));
        let mut exported = to_json(&m, Secrets::Omit);
        exported["password"] = json!("pw");
        assert_eq!(from_json(&exported).unwrap(), m);
        for (bad, needle) in [
            (
                json!({"name": "A", "host": "h", "port": 1, "colour": "red"}),
                "unknown field \"colour\"",
            ),
            (
                json!({"name": "A", "host": "h", "port": 1, "enabled": "flase"}),
                "enabled: \"flase\"",
            ),
            (
                json!({"name": "A", "host": "h", "port": [1]}),
                "port: expected a single value",
            ),
            (
                json!({"name": "A", "host": "h", "port": 1, "measurements": [{"key": "v"}]}),
                "OBIS",
            ),
        ] {
            let e = from_json(&bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
