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

    let bot = &c.waf.bot_protection;
    if bot.enabled && crate::policy::challenge::kind(bot).is_none() {
        warnings.push(
            "waf.bot_protection: javascript_challenge is off and no captcha is configured, so clients that \
             would be challenged are blocked"
                .into(),
        );
    }
    Unsupported { fatal, warnings }
}
