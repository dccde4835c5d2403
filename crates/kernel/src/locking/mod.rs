//! Locking: the model's lockdep (raw spinlock order), the kernel `struct mutex`, the
//! rt_mutex with priority inheritance, and the user-level locks built on them.
//!
//! Linux: kernel/locking/.

pub mod lockdep;
pub mod mutex;
pub mod rtmutex;
pub mod usermutex;

/// How a user mutex behaves (`--protocol`, per-resource `"protocol"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Kernel mutex, Proxy Execution off for it: no inheritance.
    None,
    /// rt_mutex with priority inheritance.
    Pi,
    /// Kernel mutex whose waiters donate through Proxy Execution.
    Proxy,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "none" => Some(Protocol::None),
            "pi" => Some(Protocol::Pi),
            "proxy" => Some(Protocol::Proxy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::None => "none",
            Protocol::Pi => "pi",
            Protocol::Proxy => "proxy",
        }
    }
}
