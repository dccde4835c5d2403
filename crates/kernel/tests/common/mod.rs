//! Set-up shared by the kernel integration tests: an event sink that keeps the stream for
//! assertions, and a user program that plays a fixed list of requests.

// Each test binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use kernel::tracepoints::{Event, EventSink};
use uapi::{UserCtx, UserOp, UserProgram};

/// Collects the event stream for assertions.
#[derive(Clone, Default)]
pub struct Collect(pub Rc<RefCell<Vec<Event>>>);

impl EventSink for Collect {
    fn event(&mut self, e: &Event) {
        self.0.borrow_mut().push(*e);
    }
}

/// A thread that issues a fixed list of requests, then exits.
pub struct Script(VecDeque<UserOp>);

impl Script {
    pub fn boxed(ops: Vec<UserOp>) -> Box<Script> {
        Box::new(Script(ops.into()))
    }
}

impl UserProgram for Script {
    fn next_op(&mut self, _ctx: &UserCtx) -> UserOp {
        self.0.pop_front().unwrap_or(UserOp::Exit)
    }
}
