use std::fmt;

/// A health setting that cannot work, reported when the builder is given
/// it: what was wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    problem: String,
}

impl ConfigError {
    pub(crate) fn invalid(setting: &'static str, problem: String) -> Self {
        ConfigError { setting, problem }
    }

    pub(crate) fn zero(setting: &'static str) -> Self {
        ConfigError::invalid(setting, "is zero; give it a positive duration".to_owned())
    }

    pub(crate) fn percent(setting: &'static str, value: f64) -> Self {
        ConfigError::invalid(
            setting,
            format!("{value} is not a percentage; give a value between 0 and 100"),
        )
    }

    /// The setting at fault.
    pub fn setting(&self) -> &str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}
