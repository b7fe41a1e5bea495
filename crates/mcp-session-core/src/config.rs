//! Configuration primitives shared by every crate of the workspace: the
//! [`ConfigError`] that names the variable at fault, and the readers of the
//! process environment ([`load`], [`text`]) after an optional `.env` file.
//!
//! Every setting is an environment variable whose name our users already know
//! from their Python servers (`MCP_SERVER_HOST`, `REDIS_URL`, ...). A `.env`
//! file in the working directory, if present, is read first; variables already
//! set in the process environment win over it. The library's own settings
//! (`mcp_session::Config`) and each service's are read with these functions, so
//! one `.env` file and one error style serve every crate.

use std::{fmt, sync::Once};

use figment::{Figment, providers::Env};
use serde::de::DeserializeOwned;

/// An invalid or unreadable configuration value.
///
/// The message names the environment variable at fault, so that an operator
/// reading a crash-looping pod's log knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// The error of variable `name`: `invalid configuration: NAME: problem`.
    pub fn var(name: &str, problem: impl fmt::Display) -> Self {
        Self(format!("{name}: {problem}"))
    }
}

/// Reads `.env` from the working directory into the process environment,
/// once per process. Missing files are fine; a malformed file is reported.
pub fn load_dotenv() -> Result<(), ConfigError> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            result = Err(ConfigError(format!(".env: {error}")));
        }
    });
    result
}

/// Deserializes `T` from the process environment (after reading `.env`).
///
/// Field names are the environment variable names: declare the struct with
/// `#[serde(rename_all = "SCREAMING_SNAKE_CASE")]` and give optional fields
/// `#[serde(default)]`. Numbers and booleans are parsed from their text.
///
/// # Errors
/// [`ConfigError`] naming the variable whose value does not parse, or `.env`
/// when that file exists but is malformed.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    load_dotenv()?;
    Figment::from(Env::raw().lowercase(false))
        .extract()
        .map_err(|error| {
            let name = error
                .path
                .first()
                .cloned()
                .unwrap_or_else(|| "environment".into());
            ConfigError::var(&name, error.kind)
        })
}

/// A variable's text exactly as set (after `.env` was read), `None` when it
/// is unset: for values that must not be parsed, such as passwords, keys and
/// URLs ([`load`] would read `12345` as a number).
///
/// # Errors
/// [`ConfigError`] naming the variable when its value is not valid UTF-8,
/// or `.env` when that file exists but is malformed.
pub fn text(name: &str) -> Result<Option<String>, ConfigError> {
    load_dotenv()?;
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::var(name, "is not valid UTF-8")),
    }
}

/// Replaces the user-info part of a URL (`redis://:secret@host`) with `***`,
/// for URLs shown in logs and `Debug` output.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The items of a comma-separated list (`ALLOWED_HOSTS=a, b`), trimmed,
/// empty items dropped.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
