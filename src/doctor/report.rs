//! What the doctor found, step by step, and its two renderings: lines for a
//! person (coloured only on a terminal) and one JSON object for scripts.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use super::json::Value;

/// One step's result.
#[derive(Debug, Clone)]
pub(super) struct Step {
    /// `config`, `dns`, `tcp`, `tls` or `service`.
    pub name: &'static str,
    /// Whether the step passed (a warning still passes).
    pub ok: bool,
    /// How long the step took.
    pub took: Duration,
    /// What it found, in one line.
    pub detail: String,
    /// Further lines: one per address, certificate or setting.
    pub lines: Vec<String>,
    /// What passed but deserves attention.
    pub warnings: Vec<String>,
    /// Step-specific JSON fields.
    pub fields: Vec<(&'static str, Value)>,
}

impl Step {
    /// A step named `name` that passed, with nothing found yet.
    pub fn new(name: &'static str, took: Duration, detail: impl Into<String>) -> Step {
        Step {
            name,
            ok: true,
            took,
            detail: detail.into(),
            lines: Vec::new(),
            warnings: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// The same step, failed.
    pub fn failed(mut self) -> Step {
        self.ok = false;
        self
    }

    /// Adds a JSON field.
    pub fn field(mut self, key: &'static str, value: impl Into<Value>) -> Step {
        self.fields.push((key, value.into()));
        self
    }
}

/// The whole diagnosis: every step run, the verdict and the exit status.
#[derive(Debug, Clone)]
pub struct Report {
    /// `host:port` as the user named it.
    pub(super) target: String,
    /// The steps run, in order; the first failure is the last.
    pub(super) steps: Vec<Step>,
    /// One line saying what works or what does not, and why.
    pub(super) verdict: String,
    /// The exit status (README, "Exit status").
    pub exit: u8,
}

impl Report {
    /// Whether every step passed.
    fn ok(&self) -> bool {
        self.exit == 0
    }

    /// The report as lines of text, with ANSI colours if `colour`.
    pub fn to_text(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(out, "vers-tunnel doctor {}", self.target);
        for step in &self.steps {
            let status = match (step.ok, step.warnings.is_empty()) {
                (false, _) => paint("1;31", "FAIL"),
                (true, false) => paint("33", "warn"),
                (true, true) => paint("32", "ok  "),
            };
            let _ = writeln!(
                out,
                "{:<8} {status} {:>9}  {}",
                step.name,
                duration(step.took),
                step.detail
            );
            for line in &step.lines {
                let _ = writeln!(out, "{:24}{line}", "");
            }
            for warning in &step.warnings {
                let _ = writeln!(
                    out,
                    "{:24}{}",
                    "",
                    paint("33", &format!("warning: {warning}"))
                );
            }
        }
        let _ = writeln!(out, "{} {}", paint("1", "verdict:"), self.verdict);
        out
    }

    /// The report as one JSON object and a newline.
    pub fn to_json(&self) -> String {
        let steps = self
            .steps
            .iter()
            .map(|step| {
                let mut fields = vec![
                    ("step".to_string(), Value::from(step.name)),
                    ("ok".to_string(), Value::Bool(step.ok)),
                    ("ms".to_string(), Value::Ms(ms(step.took))),
                    ("detail".to_string(), Value::from(step.detail.as_str())),
                    ("warnings".to_string(), Value::from(step.warnings.clone())),
                ];
                fields.extend(step.fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
                Value::Object(fields)
            })
            .collect();
        let report = Value::Object(vec![
            ("target".into(), Value::from(self.target.as_str())),
            ("ok".into(), Value::Bool(self.ok())),
            ("exit".into(), Value::Int(self.exit.into())),
            ("verdict".into(), Value::from(self.verdict.as_str())),
            ("steps".into(), Value::Array(steps)),
        ]);
        format!("{report}\n")
    }
}

/// Whether text output may be coloured: stdout is a terminal and `NO_COLOR`
/// is unset or empty (no-color.org).
pub fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Milliseconds, as JSON carries them.
pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `0.4 ms`, `12.3 ms`, `2.00 s`: a step's or an attempt's time for people.
pub(super) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", ms(d))
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut step = Step::new(
            "tcp",
            Duration::from_micros(1500),
            "1 of 2 addresses connect",
        )
        .field("fastest", "127.0.0.1:443");
        step.lines.push("[::1]:443  no answer".into());
        step.warnings.push("IPv6 does not connect".into());
        let failed = Step::new("tls", Duration::from_secs(2), "bad \"cert\"\n").failed();
        Report {
            target: "x.vm.vers.sh:443".into(),
            steps: vec![step, failed],
            verdict: "it does not work".into(),
            exit: 4,
        }
    }

    #[test]
    fn text_has_a_line_per_step_with_its_time_and_a_verdict() {
        let text = report().to_text(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "vers-tunnel doctor x.vm.vers.sh:443");
        assert_eq!(
            lines[1],
            "tcp      warn    1.5 ms  1 of 2 addresses connect"
        );
        assert_eq!(lines[2].trim(), "[::1]:443  no answer");
        assert_eq!(lines[3].trim(), "warning: IPv6 does not connect");
        assert!(
            lines[4].starts_with("tls      FAIL    2.00 s  bad"),
            "{}",
            lines[4]
        );
        assert_eq!(*lines.last().unwrap(), "verdict: it does not work");
        assert!(!text.contains('\x1b'));
        assert!(report().to_text(true).contains("\x1b[1;31mFAIL\x1b[0m"));
    }

    #[test]
    fn json_is_one_object_with_the_steps_and_the_verdict() {
        let json = report().to_json();
        assert_eq!(json.matches('\n').count(), 1, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["target"], "x.vm.vers.sh:443");
        assert_eq!(v["ok"], false);
        assert_eq!(v["exit"], 4);
        assert_eq!(v["verdict"], "it does not work");
        assert_eq!(v["steps"][0]["step"], "tcp");
        assert_eq!(v["steps"][0]["ok"], true);
        assert_eq!(v["steps"][0]["ms"], 1.5);
        assert_eq!(v["steps"][0]["fastest"], "127.0.0.1:443");
        assert_eq!(v["steps"][0]["warnings"][0], "IPv6 does not connect");
        assert_eq!(v["steps"][1]["detail"], "bad \"cert\"\n");
    }
}
