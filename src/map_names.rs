//! The names of a map: UTF-8 strings in the order they were given, checked distinct, and
//! found by name. One `Names` is shared (behind an `Arc`) by every map value built with the
//! same names: a map computation checks its names once, when it is added to a graph, and each
//! evaluation of it reuses them instead of copying and checking them again.

use crate::error::{Error, Result};

/// Up to this many names, looking one up scans them: a scan of a few short strings is as fast
/// as hashing or a binary search, and needs no index (most maps are records of a few fields).
/// Beyond it, names are found by binary search in an index sorted by name.
const SCAN_UP_TO: usize = 16;

/// A map's names, in order.
#[derive(PartialEq, Eq)]
pub struct Names {
    /// Every name followed by a NUL (so C can read one in place; a name may hold a NUL too:
    /// C readers get its length).
    text: Box<[u8]>,
    /// Where each name ends in `text` (at its NUL).
    ends: Box<[u32]>,
    /// The positions of the names sorted by name; empty for a map of at most `SCAN_UP_TO`.
    sorted: Box<[u32]>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Names {
    /// The names, in order; an error names the first name given twice.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Names> {
        let mut text = Vec::new();
        let mut ends = Vec::new();
        for name in names {
            text.extend_from_slice(name.as_bytes());
            if text.len() >= u32::MAX as usize {
                return Err(Error::invalid_argument("map names are longer than 4 GiB"));
            }
            ends.push(text.len() as u32);
            text.push(0);
        }
        let mut names = Names {
            text: text.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
            sorted: Box::default(),
        };
        let n = names.len();
        if n <= SCAN_UP_TO {
            for i in 1..n {
                let name = names.name(i);
                if (0..i).any(|j| names.name(j) == name) {
                    return Err(twice(name));
                }
            }
        } else {
            let mut sorted: Vec<u32> = (0..n as u32).collect();
            sorted.sort_unstable_by(|&a, &b| names.name(a as usize).cmp(names.name(b as usize)));
            if let Some(w) = sorted
                .windows(2)
                .find(|w| names.name(w[0] as usize) == names.name(w[1] as usize))
            {
                return Err(twice(names.name(w[0] as usize)));
            }
            names.sorted = sorted.into_boxed_slice();
        }
        Ok(names)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        }
    }

    /// Name `i` (panics when out of range, as slice indexing does).
    pub fn name(&self, i: usize) -> &str {
        let bytes = &self.text[self.start(i)..self.ends[i] as usize];
        // SAFETY: `text` is built only from &strs, each followed by a NUL byte, and names are
        // cut at those ends, so each is one of those &strs.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// Name `i` followed by its NUL (for C).
    pub fn c_name(&self, i: usize) -> &[u8] {
        &self.text[self.start(i)..=self.ends[i] as usize]
    }

    /// The position of `name`, if it is one of them.
    pub fn find(&self, name: &str) -> Option<usize> {
        if self.sorted.is_empty() {
            (0..self.len()).find(|&i| self.name(i) == name)
        } else {
            self.sorted
                .binary_search_by(|&i| self.name(i as usize).cmp(name))
                .ok()
                .map(|at| self.sorted[at] as usize)
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.name(i))
    }
}

fn twice(name: &str) -> Error {
    Error::invalid_argument(format!("map name {name:?} is given twice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_order_and_are_found() {
        for n in [0usize, 1, 3, SCAN_UP_TO, SCAN_UP_TO + 1, 100] {
            let given: Vec<String> = (0..n).rev().map(|i| format!("k{i}")).collect();
            let names = Names::new(given.iter().map(String::as_str)).unwrap();
            assert_eq!(names.len(), n);
            for (i, g) in given.iter().enumerate() {
                assert_eq!(names.name(i), g);
                assert_eq!(names.find(g), Some(i));
                assert_eq!(names.c_name(i).last(), Some(&0));
            }
            assert_eq!(names.find("absent"), None);
            assert_eq!(names.find(""), None);
        }
        let odd = Names::new(["", "a\0b", "é"]).unwrap();
        assert_eq!(odd.find(""), Some(0));
        assert_eq!(odd.find("a\0b"), Some(1));
        assert_eq!(odd.c_name(1), b"a\0b\0");
    }

    #[test]
    fn a_name_given_twice_is_named() {
        for n in [3usize, 40] {
            let mut given: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            given.push("k1".into());
            let e = Names::new(given.iter().map(String::as_str)).unwrap_err();
            assert!(e.message.contains("\"k1\" is given twice"), "{}", e.message);
        }
    }
}
