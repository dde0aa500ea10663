//! The figures of a run: a table for people (Markdown, pasted as is into
//! docs/PERFORMANCE.md) and JSON for comparisons across commits.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::machine::Machine;
use crate::stats::Summary;

/// One measured figure: a distribution of samples or a single value.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable id, e.g. `launch.warm` (the key to compare runs by).
    pub id: String,
    /// What was measured, in words: where the clock starts and stops.
    pub what: String,
    pub unit: String,
    #[serde(flatten)]
    pub value: Value,
    /// Ratios of this figure to baselines measured in the same run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Targets for this machine, each judged on the headline value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Samples(Summary),
    Single(f64),
}

impl Value {
    /// The value ratios and targets use: the median, or the single value.
    pub fn headline(&self) -> f64 {
        match self {
            Value::Samples(s) => s.median,
            Value::Single(v) => *v,
        }
    }
}

/// `figure / baseline` of the headline values.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub baseline: String,
    pub ratio: f64,
}

/// A target for this machine and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub text: String,
    pub met: bool,
}

/// Something the run could not measure, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotMeasured {
    pub what: String,
    pub why: String,
    /// True when a baseline is missing (the run still succeeds); false when
    /// a Berth figure is (the run fails).
    pub baseline: bool,
}

/// Everything a run found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: Option<Machine>,
    pub commit: String,
    pub started_at: String,
    pub command: String,
    pub figures: Vec<Figure>,
    pub not_measured: Vec<NotMeasured>,
    /// Free-text findings (profiles, methods) keyed by benchmark.
    pub notes: Vec<(String, String)>,
    /// What the end-of-run check found left behind (empty: nothing).
    pub leftovers: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn samples(&mut self, id: &str, unit: &str, what: &str, samples: &[f64]) -> Option<&mut Figure> {
        let summary = Summary::of(samples)?;
        Some(self.push(id, unit, what, Value::Samples(summary)))
    }

    pub fn single(&mut self, id: &str, unit: &str, what: &str, value: f64) -> &mut Figure {
        self.push(id, unit, what, Value::Single(value))
    }

    fn push(&mut self, id: &str, unit: &str, what: &str, value: Value) -> &mut Figure {
        self.figures.push(Figure {
            id: id.to_owned(),
            what: what.to_owned(),
            unit: unit.to_owned(),
            value,
            ratios: Vec::new(),
            targets: Vec::new(),
        });
        let last = self.figures.len() - 1;
        &mut self.figures[last]
    }

    pub fn figure(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }

    /// Adds `figure / baseline` (headline values) to `figure`, if both exist.
    pub fn ratio(&mut self, figure: &str, baseline: &str) {
        let Some(b) = self.figure(baseline).map(|b| b.value.headline()) else { return };
        if let Some(f) = self.figures.iter_mut().find(|f| f.id == figure)
            && b > 0.0
        {
            let ratio = f.value.headline() / b;
            f.ratios.push(Ratio { baseline: baseline.to_owned(), ratio });
        }
    }

    /// Adds a target to `figure`; `met` judges it.
    pub fn target(&mut self, figure: &str, text: &str, met: impl Fn(&Figure) -> bool) {
        if let Some(f) = self.figures.iter_mut().find(|f| f.id == figure) {
            let met = met(f);
            f.targets.push(Target { text: text.to_owned(), met });
        }
    }

    pub fn not_measured(&mut self, what: &str, why: &str, baseline: bool) {
        eprintln!("{what}: not measured: {why}");
        self.not_measured.push(NotMeasured { what: what.to_owned(), why: why.to_owned(), baseline });
    }

    pub fn note(&mut self, bench: &str, text: impl Into<String>) {
        let text = text.into();
        eprintln!("[{bench}] {text}");
        self.notes.push((bench.to_owned(), text));
    }

    /// True when a Berth figure could not be measured.
    pub fn failed(&self) -> bool {
        self.not_measured.iter().any(|n| !n.baseline)
    }

    /// The table and, under it, what each figure measured and the notes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.machine {
            let _ = writeln!(out, "Machine: {}\n", m.one_line());
        }
        let _ = writeln!(out, "Commit: {} · started {} · took {:.0} s · `{}`\n", self.commit, self.started_at, self.seconds, self.command);
        out.push_str("| figure | unit | n | min | median | p99 | vs baseline (median ratio) | target |\n");
        out.push_str("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n");
        for f in &self.figures {
            let (n, min, median, p99) = match &f.value {
                Value::Samples(s) => (s.n.to_string(), num(s.min), num(s.median), num(s.p99)),
                Value::Single(v) => ("1".into(), String::new(), num(*v), String::new()),
            };
            let ratios = f
                .ratios
                .iter()
                .map(|r| format!("{:.2}× {}", r.ratio, r.baseline))
                .collect::<Vec<_>>()
                .join("; ");
            let target = f
                .targets
                .iter()
                .map(|t| format!("{} {}", if t.met { "met:" } else { "MISSED:" }, t.text))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(out, "| {} | {} | {n} | {min} | {median} | {p99} | {ratios} | {target} |", f.id, f.unit);
        }
        for n in &self.not_measured {
            let _ = writeln!(out, "| {} | | | | not measured: {} | | | |", n.what, short(&n.why).replace('|', "/"));
        }
        out.push_str("\nWhat each figure measured:\n\n");
        for f in &self.figures {
            let _ = writeln!(out, "- **{}**: {}", f.id, f.what);
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n\n");
            for (bench, text) in &self.notes {
                let _ = writeln!(out, "- [{bench}] {text}");
            }
        }
        if self.leftovers.is_empty() {
            out.push_str("\nCleanup check: nothing left (overlay mounts, task cgroups, shims, runc state, podman containers).\n");
        } else {
            let _ = writeln!(out, "\nCleanup check: LEFT BEHIND: {}", self.leftovers.join("; "));
        }
        out
    }

    /// Writes `DIR/<started>-<commit>.json` and `DIR/latest.json`.
    pub fn write_json(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let name = format!("{}-{}.json", self.started_at.replace([':', '-'], ""), self.commit.replace('+', "-"));
        let path = dir.join(name);
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::write(dir.join("latest.json"), &json)?;
        Ok(path)
    }
}

/// The gist of an error for the table: its last 240 characters (the
/// innermost cause); the JSON keeps all of it.
fn short(why: &str) -> String {
    let chars: Vec<char> = why.chars().collect();
    if chars.len() <= 240 { why.to_owned() } else { format!("…{}", chars[chars.len() - 240..].iter().collect::<String>()) }
}

/// A number with as many digits as it deserves.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn ratios_targets_and_the_table() {
        let mut r = Report::default();
        r.samples("launch.berth", "ms", "RunTask to RUNNING", &[100.0, 120.0, 140.0]).unwrap();
        r.samples("launch.floor", "ms", "runc run", &[50.0, 60.0, 70.0]).unwrap();
        r.ratio("launch.berth", "launch.floor");
        r.ratio("launch.berth", "launch.missing");
        r.target("launch.berth", "p50 < 150 ms", |f| f.value.headline() < 150.0);
        let f = r.figure("launch.berth").unwrap();
        assert_eq!(f.ratios.len(), 1, "a missing baseline gives no ratio");
        assert_eq!(f.ratios[0].ratio, 2.0);
        assert!(f.targets[0].met);
        r.not_measured("podman", "not installable", true);
        assert!(!r.failed(), "a missing baseline is not a failure");
        let table = r.markdown();
        assert!(table.contains("| launch.berth | ms | 3 | 100.0 | 120.0 | 140.0 | 2.00× launch.floor | met: p50 < 150 ms |"), "{table}");
        assert!(table.contains("podman | | | | not measured: not installable"), "{table}");
        r.not_measured("launch", "berth did not start", false);
        assert!(r.failed());
    }
}
