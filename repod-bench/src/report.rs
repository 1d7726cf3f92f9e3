//! Tables: one per workload, a row per codec (and size), a column per implementation, and the
//! ratio repod/baseline. Printed as Markdown so they paste into docs/performance.md.

use std::future::Future;
use std::io;

use crate::{column_names, Impl};

/// Formats a figure for a cell.
pub type Format = fn(f64) -> String;

/// Messages per second, with a unit prefix.
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k/s", v / 1e3)
    } else {
        format!("{v:.0} /s")
    }
}

/// Microseconds; milliseconds from 10 ms up.
pub fn micros(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.2} ms", v / 1e3)
    } else {
        format!("{v:.1} µs")
    }
}

/// Bytes, as KiB.
pub fn bytes(v: f64) -> String {
    format!("{:.1} KiB", v / 1024.0)
}

/// One workload's results.
pub struct Table {
    title: String,
    format: Format,
    rows: Vec<(String, Vec<(&'static str, f64)>)>,
}

impl Table {
    pub fn new(title: &str, format: Format) -> Table {
        Table {
            title: title.to_owned(),
            format,
            rows: Vec::new(),
        }
    }

    /// Adds a row of already measured figures, by implementation name.
    pub fn push(&mut self, label: &str, figures: &[(&'static str, f64)]) {
        self.rows.push((label.to_owned(), figures.to_vec()));
    }

    /// Measures one row: runs `measure` `runs` times for each implementation, one
    /// implementation after the other, and keeps the median.
    pub async fn row<F, Fut>(
        &mut self,
        label: &str,
        impls: &[Impl],
        runs: usize,
        mut measure: F,
    ) -> io::Result<()>
    where
        F: FnMut(Impl) -> Fut,
        Fut: Future<Output = io::Result<f64>>,
    {
        let mut figures = Vec::new();
        for &imp in impls {
            let mut all = Vec::with_capacity(runs);
            for _ in 0..runs.max(1) {
                let v = measure(imp).await.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("{} {label} ({}): {e}", self.title, imp.name()),
                    )
                })?;
                all.push(v);
            }
            let v = median(&mut all);
            eprintln!("  {label} {}: {}", imp.name(), (self.format)(v));
            figures.push((imp.name(), v));
        }
        self.push(label, &figures);
        Ok(())
    }

    /// Prints the table as Markdown: a column per implementation measured in it (baseline
    /// and repod always), the ratio repod/baseline, and repod-ws/repod when repod over
    /// WebSocket was measured.
    pub fn print(&self) {
        let measured = |n: &str| {
            self.rows
                .iter()
                .any(|(_, f)| f.iter().any(|(m, _)| *m == n))
        };
        let names: Vec<&str> = column_names()
            .into_iter()
            .filter(|n| matches!(*n, "baseline" | "repod") || measured(n))
            .collect();
        let ws = names.contains(&"repod-ws");
        println!("### {}\n", self.title);
        println!(
            "| run | {} | repod/baseline |{}",
            names.join(" | "),
            if ws { " repod-ws/repod |" } else { "" }
        );
        println!(
            "|---|{}---:|{}",
            "---:|".repeat(names.len()),
            if ws { "---:|" } else { "" }
        );
        for (label, figures) in &self.rows {
            let get = |n: &str| figures.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
            let cells: Vec<String> = names
                .iter()
                .map(|n| get(n).map_or("n/a".to_owned(), self.format))
                .collect();
            let ratio = |a: &str, b: &str| match (get(a), get(b)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "n/a".to_owned(),
            };
            let ws_ratio = if ws {
                format!(" {} |", ratio("repod-ws", "repod"))
            } else {
                String::new()
            };
            println!(
                "| {label} | {} | {} |{ws_ratio}",
                cells.join(" | "),
                ratio("repod", "baseline")
            );
        }
        println!();
    }
}

/// The median of some figures (the lower middle one for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get((v.len().max(1) - 1) / 2).copied().unwrap_or(f64::NAN)
}
