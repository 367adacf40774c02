//! What this build does not do yet, stated at start-up (and at reload). A setting that would change where
//! traffic goes or weaken security if ignored stops the daemon; a protection that is on by default but not
//! built yet is a loud warning, because refusing would make the default configuration unusable.

use crate::config::Config;

pub struct Unsupported {
    /// Settings that must not be ignored: start-up fails.
    pub fatal: Vec<String>,
    /// Settings accepted but not enforced yet: logged as warnings at every start.
    pub warnings: Vec<String>,
}

pub fn check(c: &Config) -> Unsupported {
    let mut fatal = Vec::new();
    let mut warnings = Vec::new();
    let mut fatal_if = |on: bool, what: &str| {
        if on {
            fatal.push(format!("{what} is not supported by this build yet"));
        }
    };
    fatal_if(
        c.metrics.prometheus.port.is_some(),
        "metrics.prometheus.port (a separate metrics listener; /metrics is on the admin listener)",
    );

    let mut warn_if = |on: bool, what: &str| {
        if on {
            warnings.push(format!("{what} is configured but not enforced by this build yet"));
        }
    };
    warn_if(c.waf.bot_protection.enabled, "waf.bot_protection");
    Unsupported { fatal, warnings }
}
