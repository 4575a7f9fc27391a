//! Grouping identical stacks: the same functions, files and lines (arguments ignored),
//! the same state and the same creator. One hash-map lookup per goroutine, so it scales
//! linearly to hundreds of thousands of goroutines.

use std::collections::HashMap;

use super::model::Goroutine;

/// Goroutines that share one stack.
#[derive(Debug, Clone)]
pub struct Group {
    /// The first goroutine of the group, as printed.
    pub first: Goroutine,
    pub ids: Vec<u64>,
    pub min_wait: Option<u64>,
    pub max_wait: Option<u64>,
}

impl Group {
    pub fn count(&self) -> usize {
        self.ids.len()
    }
}

#[derive(Debug, Default)]
pub struct Grouper {
    key: Vec<u8>,
    index: HashMap<Vec<u8>, usize>,
    groups: Vec<Group>,
}

impl Grouper {
    pub fn add(&mut self, g: &Goroutine) {
        let key = &mut self.key;
        key.clear();
        key.extend_from_slice(g.state());
        key.push(0);
        key.push(u8::from(g.elided_frames) | (u8::from(g.stack_unavailable) << 1));
        for f in &g.frames {
            key.extend_from_slice(g.bytes(&f.function));
            key.push(0);
            key.extend_from_slice(g.bytes(&f.file));
            key.push(0);
            key.extend_from_slice(&f.line.to_le_bytes());
        }
        key.push(1);
        if let Some(cb) = &g.created_by {
            key.extend_from_slice(g.bytes(&cb.function));
            key.push(0);
            key.extend_from_slice(g.bytes(&cb.file));
            key.push(0);
            key.extend_from_slice(&cb.line.to_le_bytes());
        }
        let i = match self.index.get(key.as_slice()) {
            Some(&i) => i,
            None => {
                let i = self.groups.len();
                self.index.insert(key.clone(), i);
                self.groups.push(Group {
                    first: g.clone(),
                    ids: Vec::new(),
                    min_wait: None,
                    max_wait: None,
                });
                i
            }
        };
        let grp = &mut self.groups[i];
        grp.ids.push(g.id);
        if let Some(w) = g.wait_minutes {
            grp.min_wait = Some(grp.min_wait.map_or(w, |m| m.min(w)));
            grp.max_wait = Some(grp.max_wait.map_or(w, |m| m.max(w)));
        }
    }

    /// The groups, largest first; equal sizes in order of first appearance.
    pub fn finish(&mut self) -> Vec<Group> {
        self.index.clear();
        let mut v = std::mem::take(&mut self.groups);
        v.sort_by_key(|g| std::cmp::Reverse(g.count()));
        v
    }
}
