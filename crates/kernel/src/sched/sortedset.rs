//! An ordered set of small keys, the model's cached rbtree for the per-runqueue trees (the
//! fair timeline and its `min_slice` order, the deadline tree, the DL and RT pushable trees).
//!
//! Linux: include/linux/rbtree.h (`rb_root_cached`: `rb_add_cached()`, `rb_erase_cached()`,
//! `rb_first_cached()`).
//!
//! Deviation: two forms, chosen by size, instead of one balanced tree. Up to
//! `FEW_MAX` (32) entries it is a sorted array: a binary search and a move of the entries
//! after the position, which for runqueue-sized sets costs less than a tree's node
//! traversal and allocation. One more entry and it becomes a `BTreeSet`, O(log n) per
//! operation like Linux's rbtree however many tasks one runqueue holds; at `MANY_MIN` (16)
//! or fewer it is an array again (half the bound, so a set near it does not convert back
//! and forth). Order, membership and iteration are those of a `BTreeSet` of the same keys
//! in either form (the tests run both against one).

use std::collections::{btree_set, BTreeSet};

/// Entries up to which a set is a sorted array; one more and it becomes a B-tree.
const FEW_MAX: usize = 32;

/// Entries at or below which a B-tree set becomes an array again.
const MANY_MIN: usize = FEW_MAX / 2;

/// A set of `T` in ascending order. Protected by: whatever protects its owner (the rq lock).
#[derive(Clone)]
pub struct SortedSet<T> {
    repr: Repr<T>,
}

#[derive(Clone)]
enum Repr<T> {
    /// Sorted ascending, at most [`FEW_MAX`] long.
    Few(Vec<T>),
    /// More than [`MANY_MIN`] entries.
    Many(BTreeSet<T>),
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet {
            repr: Repr::Few(Vec::new()),
        }
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `x`; false (and the set unchanged) if it is already there.
    pub fn insert(&mut self, x: T) -> bool {
        match &mut self.repr {
            Repr::Few(v) => match v.binary_search(&x) {
                Ok(_) => false,
                Err(at) if v.len() < FEW_MAX => {
                    v.insert(at, x);
                    true
                }
                Err(_) => {
                    let mut many: BTreeSet<T> = std::mem::take(v).into_iter().collect();
                    many.insert(x);
                    self.repr = Repr::Many(many);
                    true
                }
            },
            Repr::Many(many) => many.insert(x),
        }
    }

    /// Remove `x`; false if it was not there.
    pub fn remove(&mut self, x: &T) -> bool {
        match &mut self.repr {
            Repr::Few(v) => match v.binary_search(x) {
                Ok(at) => {
                    v.remove(at);
                    true
                }
                Err(_) => false,
            },
            Repr::Many(many) => {
                let was = many.remove(x);
                if many.len() <= MANY_MIN {
                    let few: Vec<T> = std::mem::take(many).into_iter().collect();
                    self.repr = Repr::Few(few);
                }
                was
            }
        }
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: &T) -> bool {
        match &self.repr {
            Repr::Few(v) => v.binary_search(x).is_ok(),
            Repr::Many(many) => many.contains(x),
        }
    }

    /// The smallest element (the cached leftmost node).
    pub fn first(&self) -> Option<&T> {
        match &self.repr {
            Repr::Few(v) => v.first(),
            Repr::Many(many) => many.first(),
        }
    }

    /// The largest element.
    pub fn last(&self) -> Option<&T> {
        match &self.repr {
            Repr::Few(v) => v.last(),
            Repr::Many(many) => many.last(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Few(v) => v.len(),
            Repr::Many(many) => many.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> Iter<'_, T> {
        match &self.repr {
            Repr::Few(v) => Iter::Few(v.iter()),
            Repr::Many(many) => Iter::Many(many.iter()),
        }
    }
}

/// The elements of a [`SortedSet`] in ascending order.
pub enum Iter<'a, T> {
    Few(std::slice::Iter<'a, T>),
    Many(btree_set::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Few(it) => it.next(),
            Iter::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Few(it) => it.size_hint(),
            Iter::Many(it) => it.size_hint(),
        }
    }
}

impl<'a, T: Ord> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Printed like a `BTreeSet`: `{a, b}`.
impl<T: Ord + std::fmt::Debug> std::fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same operations on a `SortedSet` and a `BTreeSet` give the same answers and the
    /// same order (duplicates refused, absent removals reported), while the set grows past
    /// the array bound and shrinks below the way back several times.
    #[test]
    fn behaves_like_a_btreeset_in_both_forms() {
        let mut a = SortedSet::new();
        let mut b = BTreeSet::new();
        let (mut grew, mut shrank) = (0, 0);
        // A fixed pseudo-random sequence over a small key space, so that duplicates and
        // misses happen often; phases of mostly inserts and mostly removals move the size
        // across both thresholds.
        let mut x: u64 = 12345;
        for step in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = ((x >> 33) % 13, (x >> 40) % 7);
            let inserting = (step / 500) % 2 == 0;
            let was_many = matches!(a.repr, Repr::Many(_));
            if (x >> 20) & 3 == 0 || !inserting && (x >> 22) & 3 != 0 {
                assert_eq!(a.remove(&key), b.remove(&key));
            } else {
                assert_eq!(a.insert(key), b.insert(key));
            }
            match (was_many, &a.repr) {
                (false, Repr::Many(_)) => grew += 1,
                (true, Repr::Few(_)) => shrank += 1,
                _ => {}
            }
            match &a.repr {
                Repr::Few(v) => assert!(v.len() <= FEW_MAX),
                Repr::Many(m) => assert!(m.len() > MANY_MIN),
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(a.first(), b.first());
            assert_eq!(a.last(), b.last());
            assert_eq!(a.contains(&key), b.contains(&key));
            assert!(a.iter().eq(b.iter()));
        }
        assert!(grew >= 3 && shrank >= 3, "grew {grew}, shrank {shrank} times");
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
