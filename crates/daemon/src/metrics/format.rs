//! The two exposition formats of `/metrics`: OpenMetrics 1.0 (what
//! prometheus-client writes, and what Prometheus asks for first) and the
//! Prometheus text format 0.0.4 (the default, and what `promtool check
//! metrics` reads). Choosing one from the `Accept` header, and rewriting
//! OpenMetrics text into 0.0.4, are pure functions.

/// Content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

/// The format an `Accept` header asks for: OpenMetrics when it lists
/// `application/openmetrics-text` with a higher (or equal, and earlier)
/// quality than any text/plain or wildcard entry; the text format otherwise.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::PrometheusText;
    };
    let mut best: Option<(f32, Format)> = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let format = match media.as_str() {
            "application/openmetrics-text" => Format::OpenMetrics,
            "text/plain" | "text/*" | "*/*" => Format::PrometheusText,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::PrometheusText, |(_, f)| f)
}

/// Rewrites OpenMetrics text into the Prometheus text format 0.0.4:
/// no `# EOF` or `# UNIT`; `info` and `stateset` families become gauges and
/// `unknown` untyped; a counter family's HELP and TYPE name its `_total`
/// samples; `_created` samples are dropped. Samples are kept verbatim.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counter: Option<String> = None;
    let mut pending_help: Option<(String, String)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name.to_string(), help.to_string()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => {
                    counter = Some(name.to_string());
                    (format!("{name}_total"), "counter")
                }
                "info" => {
                    counter = None;
                    (format!("{name}_info"), "gauge")
                }
                "stateset" => {
                    counter = None;
                    (name.to_string(), "gauge")
                }
                "unknown" => {
                    counter = None;
                    (name.to_string(), "untyped")
                }
                other => {
                    counter = None;
                    (name.to_string(), other)
                }
            };
            if let Some((help_name, help)) = pending_help.take() {
                let same = help_name == name
                    || format!("{help_name}_total") == name
                    || format!("{help_name}_info") == name;
                let help_for = if same { &name } else { &help_name };
                out.push_str(&format!("# HELP {help_for} {help}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, _)) = pending_help.take() {
            out.push_str(&format!("# HELP {name}\n"));
        }
        if let Some(c) = &counter {
            let metric = line.split(['{', ' ']).next().unwrap_or("");
            if metric == format!("{c}_created") {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
