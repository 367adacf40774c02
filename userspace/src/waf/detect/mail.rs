//! Mail command injection (IMAP/SMTP): a line break followed by an SMTP verb (`RCPT TO:`, `MAIL FROM:`,
//! `DATA`) or a tagged IMAP command (`A1 FETCH`, `V100 CAPABILITY`), and mail header injection into
//! addresses and subjects (`\nBcc:`). The verbs alone are English words; the line break is what makes them
//! commands to a mail server.

use std::sync::LazyLock;

use super::{Ctx, Hit, Signatures};

pub const FRAGMENTS: &[&str] = &["\r", "\n"];

static RULES: LazyLock<Signatures> = LazyLock::new(|| {
    Signatures::new(&[
        (r"[\r\n]\s*(?:rcpt\s+to|mail\s+from)\s*:", 0.95, "mail.smtp_command"),
        (
            r"[\r\n]\s*(?:helo|ehlo|starttls|vrfy|expn|rset|quit|noop|auth\s+(?:login|plain))\b",
            0.88,
            "mail.smtp_command",
        ),
        (r"[\r\n]\s*data\s*(?:[\r\n]|$)", 0.88, "mail.smtp_data"),
        (
            r"[\r\n]\s*[a-z]{0,4}\d{1,6}\s+(?:capability|fetch|select|examine|login|logout|list|lsub|store|uid|create|delete|rename|append|noop|search|status|copy|expunge|authenticate|starttls|subscribe|close)\b",
            0.93,
            "mail.imap_command",
        ),
        (
            r"[\r\n]\s*(?:bcc|cc|to|from|reply-to|subject|sender|return-path)\s*:\s*\S+@",
            0.9,
            "mail.header_injection",
        ),
    ])
});

pub fn detect(s: &str, _ctx: &Ctx) -> Option<Hit> {
    RULES.best(s)
}

#[cfg(test)]
mod tests {
    use crate::waf::detect::test_support::confidence;
    use crate::waf::family::Family;

    fn c(s: &str) -> f32 {
        confidence(Family::MailInjection, s)
    }

    #[test]
    fn smtp_and_imap_commands_after_line_breaks_are_mail_injection() {
        assert!(c("%0ARCPT%20TO:%20test@evil.com%0A") >= 0.9);
        assert!(c("%0D%0AV100%20CAPABILITY%0D%0AV101%20FETCH%204791") >= 0.9);
        assert!(c("me@example.com%0ABcc:%20all@example.com") >= 0.85);
    }

    #[test]
    fn the_same_words_in_prose_pass() {
        assert!(c("please fetch the data and quit") < 0.8);
        assert!(c("line one%0Aline two: data") < 0.8);
    }
}
