//! An ordered set of small keys kept as a sorted vector: the model's cached rbtree for the
//! per-runqueue trees (the fair timeline and its `min_slice` order, the deadline tree, the DL
//! and RT pushable trees).
//!
//! Linux: include/linux/rbtree.h (`rb_root_cached`: `rb_add_cached()`, `rb_erase_cached()`,
//! `rb_first_cached()`).
//!
//! Deviation: a sorted `Vec` instead of a balanced tree. Insertion and removal are a binary
//! search plus a move of the entries after the position (O(n) copies, O(log n) compares),
//! where Linux's rbtree is O(log n) throughout. The keys are a few machine words and a
//! runqueue holds at most every task of the run, so the copy is short, and it beats a tree's
//! node traversal and allocation for the queue lengths runqueues have. Order, membership and
//! iteration are those of a `BTreeSet` of the same keys.

/// A set of `T` in ascending order. Protected by: whatever protects its owner (the rq lock).
#[derive(Clone, PartialEq, Eq)]
pub struct SortedSet<T> {
    items: Vec<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet { items: Vec::new() }
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `x`; false (and the set unchanged) if it is already there.
    pub fn insert(&mut self, x: T) -> bool {
        match self.items.binary_search(&x) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, x);
                true
            }
        }
    }

    /// Remove `x`; false if it was not there.
    pub fn remove(&mut self, x: &T) -> bool {
        match self.items.binary_search(x) {
            Ok(at) => {
                self.items.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: &T) -> bool {
        self.items.binary_search(x).is_ok()
    }
}

impl<T> SortedSet<T> {
    /// The smallest element (the cached leftmost node).
    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }

    /// The largest element.
    pub fn last(&self) -> Option<&T> {
        self.items.last()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Printed like a `BTreeSet`: `{a, b}`.
impl<T: std::fmt::Debug> std::fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The same operations on a `SortedSet` and a `BTreeSet` give the same answers and the
    /// same order (duplicates refused, absent removals reported, ties broken by the whole key).
    #[test]
    fn behaves_like_a_btreeset() {
        let mut a = SortedSet::new();
        let mut b = BTreeSet::new();
        // A fixed pseudo-random sequence of inserts and removals over a small key space, so
        // that duplicates and misses happen often.
        let mut x: u64 = 12345;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = ((x >> 33) % 7, (x >> 40) % 5);
            if (x >> 20) % 3 == 0 {
                assert_eq!(a.remove(&key), b.remove(&key));
            } else {
                assert_eq!(a.insert(key), b.insert(key));
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.first(), b.first());
            assert_eq!(a.last(), b.last());
            assert_eq!(a.contains(&key), b.contains(&key));
        }
        assert!(a.iter().eq(b.iter()));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
