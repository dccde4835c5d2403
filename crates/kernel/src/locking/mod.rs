//! Locking: the model's lockdep (raw spinlock order), and later mutexes and rt_mutexes.
//!
//! Linux: kernel/locking/.

pub mod lockdep;
pub mod usermutex;
