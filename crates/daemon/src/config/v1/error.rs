//! The config file's error type: NVIDIA's message text, plus where in the
//! file the problem is when the parser knows it.

/// One problem with a config file. `Display` is NVIDIA's text, followed by
/// ` (line L, column C)` when the position is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", position(.location))]
pub struct ConfigError {
    pub message: String,
    /// 1-based `(line, column)` of the offending value.
    pub location: Option<(u64, u64)>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            location: None,
        }
    }

    pub fn at(message: impl Into<String>, location: Option<(u64, u64)>) -> Self {
        ConfigError {
            message: message.into(),
            location,
        }
    }

    /// A YAML/JSON syntax error reported by serde-saphyr, as one line.
    pub(crate) fn syntax(e: &serde_saphyr::Error) -> Self {
        let location = e
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|(l, _)| *l > 0);
        let mut message = e.without_snippet().to_string();
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        ConfigError { message, location }
    }
}

fn position(location: &Option<(u64, u64)>) -> String {
    location.map_or_else(String::new, |(line, column)| {
        format!(" (line {line}, column {column})")
    })
}
