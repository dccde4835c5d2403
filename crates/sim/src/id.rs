//! Typed ids: a `u32` index wrapped in a type of its own, so that the compiler rejects a CPU
//! id where a task id is expected (and every other mix-up between arenas).
//!
//! The field stays public, like [`crate::LockId`]'s: ids are made by the arena that owns them
//! (push onto a `Vec`, take its old length), and a private field with `new`/`get` would only
//! add ceremony there without checking anything more. [`id_type!`](crate::id_type) defines one
//! such type.

/// Defines a typed id: `struct Name(pub u32)` with `idx()` for indexing its arena.
///
/// `Debug` and `Display` print the bare number, exactly what the `u32` the type replaces
/// printed, so that no error text, assertion message or trace changes when an id becomes
/// typed.
#[macro_export]
macro_rules! id_type {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis struct $name(pub u32);

        impl $name {
            /// This id as an index into the arena (`Vec`) that owns it.
            #[inline]
            pub const fn idx(self) -> usize {
                self.0 as usize
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::id_type! {
        /// A test id.
        struct Probe;
    }

    #[test]
    fn prints_and_indexes_like_the_bare_number() {
        let p = Probe(7);
        assert_eq!(p.idx(), 7);
        assert_eq!(format!("{p} {p:?} {:?}", Some(p)), "7 7 Some(7)");
        assert!(Probe(2) < Probe(10));
    }
}
