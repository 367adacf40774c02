//! Where each key of a YAML document is: a map from key path (`proxy.upstreams[0].servers[1].port`) to the
//! 1-based line of the key (or of the item, for sequence elements), so every configuration error can name its
//! line even though typed deserialisation happens on a tree that no longer has positions.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

use super::path::KeyPath;

#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

enum Frame {
    /// Inside a mapping; `key` is the key whose value comes next, `None` while a key is expected.
    Mapping {
        path: KeyPath,
        key: Option<String>,
    },
    Sequence {
        path: KeyPath,
        next: usize,
    },
}

impl LineIndex {
    /// Indexes `text`. A document the parser rejects yields the lines found before the error; the syntax error
    /// itself is reported by the deserialiser, with its own position.
    pub fn build(text: &str) -> Self {
        let mut index = Self::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let line = span.start.line();
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Mapping { path, key: key @ None }) = stack.last_mut() {
                        let value = value.into_owned();
                        index.lines.insert(path.child_key(&value).to_string(), line);
                        *key = Some(value);
                    } else {
                        index.value_at(&mut stack, line);
                    }
                }
                Event::Alias(_) => {
                    index.value_at(&mut stack, line);
                }
                Event::MappingStart(..) => {
                    let path = index.value_at(&mut stack, line);
                    stack.push(Frame::Mapping { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = index.value_at(&mut stack, line);
                    stack.push(Frame::Sequence { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        index
    }

    /// Records a value node starting on `line` and returns its path, advancing the enclosing container.
    fn value_at(&mut self, stack: &mut [Frame], line: usize) -> KeyPath {
        match stack.last_mut() {
            None => KeyPath::root(),
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(k) => path.child_key(&k),
                // A complex (non-scalar) key: index nothing under it.
                None => path.child_key("?"),
            },
            Some(Frame::Sequence { path, next }) => {
                let item = path.child_index(*next);
                *next += 1;
                self.lines.entry(item.to_string()).or_insert(line);
                item
            }
        }
    }

    /// The line of `path`, or of its nearest ancestor that appears in the document (a missing key is reported
    /// at the mapping that lacks it).
    pub fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let mut p = path.clone();
        loop {
            if let Some(line) = self.lines.get(&p.to_string()) {
                return Some(*line);
            }
            if !p.pop() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(index: &LineIndex, path: &str) -> Option<usize> {
        index.line_of(&KeyPath::parse(path))
    }

    #[test]
    fn keys_and_sequence_items_get_their_lines() {
        let text = "server:\n  port: 8080\nproxy:\n  upstreams:\n    - name: a\n      servers:\n        - host: x\n          port: 1\n    - name: b\n";
        let index = LineIndex::build(text);
        assert_eq!(line(&index, "server"), Some(1));
        assert_eq!(line(&index, "server.port"), Some(2));
        assert_eq!(line(&index, "proxy.upstreams[0].name"), Some(5));
        assert_eq!(line(&index, "proxy.upstreams[0].servers[0].port"), Some(8));
        assert_eq!(line(&index, "proxy.upstreams[1]"), Some(9));
    }

    #[test]
    fn missing_keys_fall_back_to_the_nearest_ancestor() {
        let index = LineIndex::build("a: 1\nserver:\n  host: 0.0.0.0\n");
        assert_eq!(line(&index, "server.port"), Some(2));
        assert_eq!(line(&index, "nothing.here"), None);
    }

    #[test]
    fn flow_style_collections_are_indexed() {
        let index = LineIndex::build("xdp:\n  deny: [10.0.0.1,\n    bad]\n");
        assert_eq!(line(&index, "xdp.deny[1]"), Some(3));
    }
}
