//! Key paths into the configuration tree, written as operators read them: `proxy.upstreams[0].servers[1].port`.

use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn child_key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    pub fn child_index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    pub fn push_key(&mut self, key: &str) {
        self.0.push(Segment::Key(key.to_owned()));
    }

    /// Removes the last segment; false at the root.
    pub fn pop(&mut self) -> bool {
        self.0.pop().is_some()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the display form back (used by tests and for env-variable paths); never fails, since any text is
    /// a sequence of keys.
    pub fn parse(s: &str) -> Self {
        let mut p = Self::root();
        for part in s.split('.').filter(|p| !p.is_empty()) {
            let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
            if !key.is_empty() {
                p.push_key(key);
            }
            for idx in rest.split('[') {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    p.0.push(Segment::Index(i));
                }
            }
        }
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let p = KeyPath::root()
            .child_key("proxy")
            .child_key("upstreams")
            .child_index(0)
            .child_key("port");
        assert_eq!(p.to_string(), "proxy.upstreams[0].port");
        assert_eq!(KeyPath::parse("proxy.upstreams[0].port"), p);
    }
}
