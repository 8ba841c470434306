//! Why a configuration was refused. Messages name fields as `{field}` placeholders, so that
//! each front end shows its own names for them (`--serial` on the command line,
//! `serial_device` in the API, import files and any later source) while every front end shows
//! the same sentence.

use std::fmt;

/// How a message names fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `serial_device`: the API, import/export files, the database.
    Fields,
    /// `--serial`: the command line.
    Flags,
}

/// A refused configuration value or combination. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    meter: Option<String>,
    field: Option<&'static str>,
    template: String,
}

impl ConfigError {
    /// `template` names fields as `{name}`.
    pub fn new(template: impl Into<String>) -> ConfigError {
        ConfigError {
            meter: None,
            field: None,
            template: template.into(),
        }
    }

    /// An error about one field's value: "{field}: message".
    pub fn field(field: &'static str, message: impl fmt::Display) -> ConfigError {
        ConfigError {
            meter: None,
            field: Some(field),
            template: format!("{{{field}}}: {}", message.to_string().replace('{', "{{")),
        }
    }

    /// The same error, said about the meter `name`.
    pub fn of_meter(mut self, name: &str) -> ConfigError {
        if self.meter.is_none() && !name.is_empty() {
            self.meter = Some(name.to_string());
        }
        self
    }

    /// The one field at fault, where there is one (the admin page shows the message there).
    pub fn field_name(&self) -> Option<&'static str> {
        self.field
    }

    pub fn render(&self, naming: Naming) -> String {
        let mut out = match &self.meter {
            Some(m) => format!("meter {m:?}: "),
            None => String::new(),
        };
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            if let Some(escaped) = after.strip_prefix('{') {
                out.push('{');
                rest = escaped;
                continue;
            }
            match after.find('}') {
                Some(close) if is_name(&after[..close]) => {
                    out.push_str(&shown_name(&after[..close], naming));
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn shown_name(field: &str, naming: Naming) -> String {
    match naming {
        Naming::Fields => field.to_string(),
        Naming::Flags => match super::fields::find(field) {
            Some(f) => format!("--{}", f.flag),
            None if field == "measurements" => "--measure".to_string(),
            None if field == "profiles" => "meter profile".to_string(),
            None => field.to_string(),
        },
    }
}

/// A user's value quoted for a message (`ConfigError::field` escapes the braces in it).
pub fn quoted(value: &str) -> String {
    format!("{value:?}")
}

/// A whole message without placeholders, from text that may hold braces.
pub fn literal(message: &str) -> String {
    message.replace('{', "{{")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Naming::Fields))
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fields_or_flags() {
        let e = ConfigError::new("give either {host} and {port}, or {serial_device}").of_meter("A");
        assert_eq!(
            e.render(Naming::Fields),
            "meter \"A\": give either host and port, or serial_device"
        );
        assert_eq!(
            e.render(Naming::Flags),
            "meter \"A\": give either --host and --port, or --serial"
        );
        let e = ConfigError::field("port", "\"{host}\" is not 1..65535");
        let odd = ConfigError::new(literal("unknown field \"{port}\""));
        assert_eq!(odd.render(Naming::Flags), "unknown field \"{port}\"");
        assert_eq!(e.field_name(), Some("port"));
        assert_eq!(
            e.render(Naming::Flags),
            "--port: \"{host}\" is not 1..65535"
        );
    }
}
