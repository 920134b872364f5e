//! Where each thread of an execution (the execution itself, a Parallel branch, a Map
//! iteration) is in the history.

use super::{Interpreter, Prev};
use crate::clock::Clock;
use crate::history::{History, HistoryFull};
use serde_json::Value;

/// The last event one thread of the execution recorded: the next event it records names that
/// one as its previous event, and becomes the last. Copying a cursor forks the thread (each
/// Parallel branch and Map iteration starts from a copy of its state's cursor).
#[derive(Clone, Copy)]
pub(super) struct Cursor<'a> {
    history: &'a History,
    clock: &'a Clock,
    last: Prev,
}

impl<'a> Cursor<'a> {
    /// The id of the last event (0: none yet).
    pub(super) fn last(&self) -> Prev {
        self.last
    }

    /// Records an event, stamped with the execution's clock, after the last one, and moves the
    /// cursor onto it.
    pub(super) fn record(
        &mut self,
        ty: &str,
        key: Option<&'static str>,
        details: Value,
    ) -> Result<(), HistoryFull> {
        self.last = self
            .history
            .push(self.last, self.clock.now(), ty, key, details)?;
        Ok(())
    }
}

impl Interpreter {
    /// A cursor whose last event is `last`.
    pub(super) fn cursor(&self, last: Prev) -> Cursor<'_> {
        Cursor {
            history: &self.history,
            clock: &self.clock,
            last,
        }
    }
}
