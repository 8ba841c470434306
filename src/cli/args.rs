//! Command-line parsing shared by the subcommands. Meter flags are not defined here: they
//! come from the configuration model's field table (`dlms_bridge::config::fields`), so that
//! `meter add|edit`, `read` and `scan` take the same flags with the same defaults, and a bad
//! value gets the same sentence as in the API. Every mistake is one line and exit code 2.

use dlms_bridge::config::fields::{self, Kind};
use dlms_bridge::config::presets::{self, Preset};
use dlms_bridge::config::{ConfigError, Measurement, MeterConfig, Naming};
use lexopt::prelude::*;

/// A usage error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

/// A refused configuration, in the command line's names (`--serial`, not `serial_device`).
impl From<ConfigError> for UsageError {
    fn from(e: ConfigError) -> Self {
        UsageError(e.render(Naming::Flags))
    }
}

pub fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// The candidate closest to a mistyped word (`ad` -> `add`, `mqtt.hots` -> `mqtt.host`), if
/// one is near enough to be what was meant: at most one edit for short words, two for longer.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if word.chars().count() <= 3 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// " (did you mean X?)" for a near miss, else nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates).map_or(String::new(), |c| format!(" (did you mean {c}?)"))
}

/// Levenshtein distance, in characters; a swap of two neighbours counts as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1)
                .min(row[j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

pub fn parse_num<T: std::str::FromStr>(flag: &str, v: std::ffi::OsString) -> Result<T, UsageError> {
    let s = v.string()?;
    s.parse()
        .map_err(|_| usage(format!("{flag}: invalid value {s:?}")))
}

/// Whether a word after a yes/no flag that is not true/false is an error (`meter edit A
/// --enabled flase`) or the next argument (`read --mode-e 1-0:32.7.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterYesNo {
    Refuse,
    LeaveForNext,
}

/// A meter described by flags: the model's defaults, then the flags in the order given.
pub struct MeterFlags {
    pub meter: MeterConfig,
    /// The flags given (without `--`) and their values, in order.
    pub given: Vec<(String, String)>,
    /// `--measure` specs given (they replace the default set).
    pub measures: Vec<Measurement>,
    after_yes_no: AfterYesNo,
    /// `read` and `scan`: a meter without a name, not named in messages.
    anonymous: bool,
    /// `--preset`: a make's settings, under the flags given.
    preset: Option<&'static Preset>,
    /// `--meter-serial`: for presets that derive the physical address from it.
    meter_serial: Option<String>,
}

impl MeterFlags {
    pub fn new(meter: MeterConfig, after_yes_no: AfterYesNo) -> MeterFlags {
        MeterFlags {
            meter,
            given: Vec::new(),
            measures: Vec::new(),
            after_yes_no,
            anonymous: false,
            preset: None,
            meter_serial: None,
        }
    }

    /// The flags of `read` and `scan`: a meter that is not stored and has no name.
    pub fn anonymous(meter: MeterConfig, after_yes_no: AfterYesNo) -> MeterFlags {
        MeterFlags {
            anonymous: true,
            ..MeterFlags::new(meter, after_yes_no)
        }
    }

    /// Consumes `--name` and its value if it is a meter flag; `false` if it is not one.
    /// A yes/no flag alone means yes; `--flag=VALUE` works for every flag.
    pub fn take(&mut self, name: &str, parser: &mut lexopt::Parser) -> Result<bool, UsageError> {
        if name == "measure" {
            let spec = parser.value()?.string()?;
            self.measures.push(Measurement::parse_spec(&spec)?);
            return Ok(true);
        }
        if name == "preset" {
            let word = parser.value()?.string()?;
            let preset = presets::find(&word).ok_or_else(|| {
                let names = presets::PRESETS.iter().map(|p| p.name);
                usage(format!(
                    "unknown preset {word:?}{} (dlms-bridge meter presets lists them)",
                    did_you_mean(&word, names)
                ))
            })?;
            if self.preset.is_some() {
                return Err(usage("--preset is given once"));
            }
            self.preset = Some(preset);
            return Ok(true);
        }
        if name == "meter-serial" {
            self.meter_serial = Some(parser.value()?.string()?);
            return Ok(true);
        }
        if !fields::is_flag(name) {
            return Ok(false);
        }
        let yes_no = fields::find_flag(name).is_some_and(|f| f.kind == Kind::Bool);
        let value = match parser.optional_value() {
            Some(v) => v.string()?,
            None if yes_no => self.yes_no_value(parser)?,
            None => parser.value()?.string()?,
        };
        fields::apply_flag(&mut self.meter, name, &value)?;
        self.given.push((name.to_string(), value));
        Ok(true)
    }

    fn yes_no_value(&self, parser: &mut lexopt::Parser) -> Result<String, UsageError> {
        let mut raw = parser.raw_args()?;
        let next = raw.peek().and_then(|a| a.to_str()).map(str::to_owned);
        match next {
            Some(word) if !word.starts_with('-') => {
                let is_yes_no = dlms_bridge::config::values::boolean(&word).is_ok();
                if is_yes_no || self.after_yes_no == AfterYesNo::Refuse {
                    // Taken, so that a typo is refused by the field's own parser.
                    raw.next();
                    Ok(word)
                } else {
                    Ok("true".into())
                }
            }
            _ => Ok("true".into()),
        }
    }

    /// Whether `--preset` or `--meter-serial` was given (applied when the meter is finished).
    pub fn has_preset(&self) -> bool {
        self.preset.is_some() || self.meter_serial.is_some()
    }

    pub fn was_given(&self, flag: &str) -> bool {
        self.given.iter().any(|(g, _)| g == flag)
    }

    /// The same flags applied to another meter (`meter edit`: only the fields given change).
    pub fn onto(mut self, mut meter: MeterConfig) -> Result<MeterConfig, UsageError> {
        self.apply_preset()?;
        for (flag, value) in &self.given {
            fields::apply_flag(&mut meter, flag, value)?;
        }
        MeterFlags { meter, ..self }.finish()
    }

    /// Fills what the preset sets and the flags did not (an explicit flag always wins).
    fn apply_preset(&mut self) -> Result<(), UsageError> {
        let Some(preset) = self.preset else {
            if self.meter_serial.is_some() {
                return Err(usage(
                    "--meter-serial is for a --preset that derives the address from it (microstar)",
                ));
            }
            return Ok(());
        };
        let given = |field: &str| {
            let flag = fields::find(field).map_or(field, |f| f.flag);
            self.given.iter().any(|(g, _)| g == flag)
        };
        let mut preset_given = Vec::new();
        for (field, value) in preset.fields {
            if !given(field) {
                let flag = fields::find(field).map_or(*field, |f| f.flag);
                fields::apply_flag(&mut self.meter, flag, value)?;
                preset_given.push((flag.to_string(), value.to_string()));
            }
        }
        match (preset.physical_from_serial, &self.meter_serial) {
            (Some(rule), Some(serial)) if !given("server_physical") => {
                let physical = rule.physical(serial).ok_or_else(|| {
                    usage(format!(
                        "--meter-serial {serial:?}: preset {} takes the physical address from \
                         its last 4 digits, and it does not end in 4 digits",
                        preset.name
                    ))
                })?;
                self.meter.server_physical = Some(physical);
                preset_given.push(("server-physical".into(), physical.to_string()));
            }
            (None, Some(_)) => {
                return Err(usage(format!(
                    "--meter-serial: preset {} does not derive an address from it",
                    preset.name
                )))
            }
            (Some(_), None) if !given("server_physical") => {
                // Without it the meter would get the default physical address and never
                // answer (accepted silently before: a new user's finding).
                return Err(usage(format!(
                    "preset {} takes the HDLC physical address from the meter's serial number: give --meter-serial SERIAL (printed on the meter), or --server-physical N",
                    preset.name
                )));
            }
            _ => {}
        }
        if self.measures.is_empty() {
            if let Some(m) = preset.measurements() {
                self.measures = m;
            }
        }
        // Kept under the flags given, so that `onto` (meter edit) applies them first too.
        preset_given.append(&mut self.given);
        self.given = preset_given;
        self.preset = None;
        self.meter_serial = None;
        Ok(())
    }

    /// The meter with its measurements, checked as a whole.
    pub fn finish(mut self) -> Result<MeterConfig, UsageError> {
        self.apply_preset()?;
        if !self.measures.is_empty() {
            self.meter.measurements = std::mem::take(&mut self.measures);
        }
        if self.anonymous {
            self.meter.combination()?;
        } else {
            self.meter.validate()?;
        }
        Ok(self.meter)
    }
}

/// The meter flags' help, generated from the field table (defaults included).
pub fn meter_flags_help(skip: &[&str]) -> String {
    fields::help_lines(skip)
}

/// Bytes from hex digits (whitespace ignored); `None` if anything else is there.
pub use dlms_bridge::hex::parse as parse_hex;

/// `N` bytes from hex (spaces allowed), or a usage error naming the flag.
pub fn hex_array<const N: usize>(flag: &str, s: &str) -> Result<[u8; N], UsageError> {
    dlms_bridge::hex::array(s).ok_or_else(|| {
        usage(format!(
            "{flag}: expected {N} bytes as {} hex digits",
            2 * N
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], after: AfterYesNo) -> (Result<MeterConfig, UsageError>, Vec<String>) {
        let mut p = lexopt::Parser::from_args(args.iter().copied());
        let mut flags = MeterFlags::anonymous(MeterConfig::default(), after);
        let mut rest = Vec::new();
        let r = (|| {
            while let Some(arg) = p.next()? {
                match arg {
                    Long(name) => {
                        let name = name.to_string();
                        if !flags.take(&name, &mut p)? {
                            return Err(usage(format!("--{name}?")));
                        }
                    }
                    Value(v) => rest.push(v.string()?),
                    _ => return Err(usage("?")),
                }
            }
            flags.finish()
        })();
        (r, rest)
    }

    #[test]
    fn yes_no_flags_are_strict_and_may_stand_alone() {
        let (m, _) = parse(
            &["--serial", "/dev/ttyS0", "--mode-e", "--enabled", "no"],
            AfterYesNo::Refuse,
        );
        let m = m.unwrap();
        assert!(m.mode_e && !m.enabled);
        let (e, _) = parse(
            &["--host", "h", "--port", "1", "--enabled", "flase"],
            AfterYesNo::Refuse,
        );
        assert_eq!(
            e.err().unwrap().0,
            "--enabled: \"flase\" is not true or false (yes/no, 1/0)"
        );
        let (m, rest) = parse(
            &["--serial", "/dev/ttyS0", "--mode-e", "1-0:32.7.0"],
            AfterYesNo::LeaveForNext,
        );
        assert!(m.unwrap().mode_e);
        assert_eq!(rest, ["1-0:32.7.0"]);
        let (m, _) = parse(
            &["--host", "h", "--port=1", "--enabled=0"],
            AfterYesNo::Refuse,
        );
        assert!(!m.unwrap().enabled);
    }

    #[test]
    fn near_misses_are_suggested() {
        let commands = ["add", "list", "show", "edit", "rm", "import", "export"];
        assert_eq!(suggest("ad", commands), Some("add"));
        assert_eq!(suggest("lsit", commands), Some("list"));
        assert_eq!(suggest("improt", commands), Some("import"));
        assert_eq!(suggest("frobnicate", commands), None);
        assert_eq!(
            suggest("mqtt.hots", ["mqtt.host", "mqtt.port"]),
            Some("mqtt.host")
        );
        assert_eq!(did_you_mean("xyz", commands), "");
    }

    #[test]
    fn errors_name_flags() {
        let (e, _) = parse(&["--host", "h"], AfterYesNo::Refuse);
        assert_eq!(e.err().unwrap().0, "--host needs --port");
        let (e, _) = parse(
            &["--serial", "/dev/x", "--host", "h", "--port", "1"],
            AfterYesNo::Refuse,
        );
        assert!(e
            .err()
            .unwrap()
            .0
            .contains("give either --host and --port, or --serial"));
        let (e, _) = parse(
            &["--host", "h", "--port", "1", "--timeout-ms", "0"],
            AfterYesNo::Refuse,
        );
        assert_eq!(
            e.err().unwrap().0,
            "--connect-timeout-ms: \"0\" is not a whole number 10..600000"
        );
    }
}
