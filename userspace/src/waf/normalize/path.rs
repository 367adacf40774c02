//! Path canonicalisation: backslashes as slashes, `//` collapsed, `.` segments dropped, `..` resolved, and
//! whether `..` tried to climb above the root. The detectors look at the decoded path as sent (to see the
//! `../` itself); this form is for matching paths against exclusions.

/// The canonical form of a decoded path, and whether it contained a `..` segment.
pub fn canonical(decoded: &str) -> (String, bool) {
    let mut segments: Vec<&str> = Vec::new();
    let mut dotdot = false;
    let replaced;
    let text = if decoded.contains('\\') || decoded.contains('\0') {
        replaced = decoded.replace('\\', "/").replace('\0', "");
        replaced.as_str()
    } else {
        decoded
    };
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                dotdot = true;
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(text.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (text.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    (out, dotdot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_double_slashes_and_backslashes_are_canonicalised() {
        assert_eq!(canonical("/a/./b//c/../d"), ("/a/b/d".to_owned(), true));
        assert_eq!(canonical("\\a\\..\\..\\etc\\passwd"), ("/etc/passwd".to_owned(), true));
        assert_eq!(canonical("/static/app.js"), ("/static/app.js".to_owned(), false));
        assert_eq!(canonical("/"), ("/".to_owned(), false));
    }

    #[test]
    fn null_bytes_are_removed() {
        assert_eq!(canonical("/a\0b").0, "/ab");
    }
}
