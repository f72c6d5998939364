//! Single-flight: concurrent loads of one key run the loader once.
//!
//! The first caller to miss becomes the *leader* and registers a [`Flight`]
//! for the key; later callers find it and wait. The leader publishes the
//! result to the flight (every waiter gets a clone of the value, or the same
//! `Arc` of the error) and only then unregisters it, after storing a success
//! in the cache — so a caller that arrives after the flight is gone finds the
//! value cached, and no load is ever run twice for one miss.
//!
//! If the leader never finishes — its loader panics, or (async) its future is
//! dropped — a guard marks the flight *abandoned* and wakes the waiters, who
//! start over and elect a new leader. Waiting is both blocking (a condvar,
//! for [`super::LocalCache::get_or_load`]) and async (an `event_listener`
//! event, runtime-agnostic, for [`super::LocalCache::get_or_load_async`]).
//!
//! A flight also carries an *invalidated* flag: an invalidation of the key
//! while it loads marks it, and the leader then hands its result to the
//! waiters but does not cache it, since it may predate the invalidation.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;

/// The state of one load.
pub(crate) enum State<V, E> {
    Pending,
    Done(Result<V, Arc<E>>),
    Abandoned,
}

/// One load in progress, shared by its leader and waiters.
pub(crate) struct Flight<V, E> {
    state: Mutex<State<V, E>>,
    blocking: Condvar,
    event: Event,
    invalidated: AtomicBool,
}

/// Type-erased view of a flight, so one registry holds flights of any error
/// type and invalidation can reach them.
pub(crate) trait AnyFlight: Send + Sync {
    fn invalidate(&self);
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<V: Send + Sync + 'static, E: Send + Sync + 'static> AnyFlight for Flight<V, E> {
    fn invalidate(&self) {
        self.invalidated.store(true, Ordering::SeqCst);
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<V: Clone, E> Flight<V, E> {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::Pending),
            blocking: Condvar::new(),
            event: Event::new(),
            invalidated: AtomicBool::new(false),
        }
    }

    /// The result if the flight has ended: `Some(Some(result))` when done,
    /// `Some(None)` when abandoned, `None` while pending.
    fn outcome(&self) -> Option<Option<Result<V, Arc<E>>>> {
        match &*self.state.lock() {
            State::Pending => None,
            State::Done(result) => Some(Some(result.clone())),
            State::Abandoned => Some(None),
        }
    }

    /// Blocks until the flight ends.
    pub(crate) fn wait(&self) -> Option<Result<V, Arc<E>>> {
        let mut state = self.state.lock();
        loop {
            match &*state {
                State::Pending => self.blocking.wait(&mut state),
                State::Done(result) => return Some(result.clone()),
                State::Abandoned => return None,
            }
        }
    }

    /// Waits asynchronously until the flight ends.
    pub(crate) async fn wait_async(&self) -> Option<Result<V, Arc<E>>> {
        loop {
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            let listener = self.event.listen();
            // Re-check after registering, so a notification between the
            // check and the registration is not lost.
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            listener.await;
        }
    }

    /// True if the key was invalidated while loading.
    pub(crate) fn invalidated(&self) -> bool {
        self.invalidated.load(Ordering::SeqCst)
    }

    fn finish(&self, state: State<V, E>) {
        *self.state.lock() = state;
        self.blocking.notify_all();
        self.event.notify(usize::MAX);
    }
}

/// Flights in progress, by key bytes.
type FlightMap = HashMap<Box<[u8]>, Arc<dyn AnyFlight>>;

/// The registry of flights of one cache, keyed by key bytes.
#[derive(Default)]
pub(crate) struct Flights {
    by_key: Mutex<FlightMap>,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("in_flight", &self.by_key.lock().len())
            .finish()
    }
}

/// What a caller is in a flight.
pub(crate) enum Role<'a, V: Clone + Send + Sync + 'static, E: Send + Sync + 'static> {
    /// Run the loader and finish the flight through the guard.
    Leader(LeaderGuard<'a, V, E>),
    /// Wait for the leader.
    Waiter(Arc<Flight<V, E>>),
    /// Another load of this key with a different error type is running;
    /// load without coalescing.
    Alone,
}

impl Flights {
    /// Joins the flight for `key`, starting one if there is none.
    pub(crate) fn join<V, E>(&self, key: &[u8]) -> Role<'_, V, E>
    where
        V: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let mut by_key = self.by_key.lock();
        if let Some(flight) = by_key.get(key) {
            return match flight.clone().as_any().downcast::<Flight<V, E>>() {
                Ok(flight) => Role::Waiter(flight),
                Err(_) => Role::Alone,
            };
        }
        let flight = Arc::new(Flight::<V, E>::new());
        by_key.insert(key.into(), flight.clone());
        Role::Leader(LeaderGuard {
            flights: self,
            key: key.into(),
            flight,
            finished: false,
        })
    }

    /// Marks the flight of `key`, if any, invalidated.
    pub(crate) fn invalidate(&self, key: &[u8]) {
        if let Some(flight) = self.by_key.lock().get(key) {
            flight.invalidate();
        }
    }

    /// Marks every flight invalidated.
    pub(crate) fn invalidate_all(&self) {
        for flight in self.by_key.lock().values() {
            flight.invalidate();
        }
    }

    fn remove(&self, key: &[u8]) {
        self.by_key.lock().remove(key);
    }
}

/// The leader's obligation to end its flight; abandons it if dropped
/// unfinished (panic or cancellation).
pub(crate) struct LeaderGuard<'a, V: Clone + Send + Sync + 'static, E: Send + Sync + 'static> {
    flights: &'a Flights,
    key: Box<[u8]>,
    flight: Arc<Flight<V, E>>,
    finished: bool,
}

impl<V: Clone + Send + Sync + 'static, E: Send + Sync + 'static> LeaderGuard<'_, V, E> {
    /// True if the key was invalidated while loading.
    pub(crate) fn invalidated(&self) -> bool {
        self.flight.invalidated()
    }

    /// Publishes the result to the waiters and ends the flight. The caller
    /// has already cached a success (if it should be cached).
    pub(crate) fn finish(mut self, result: Result<V, Arc<E>>) {
        self.flight.finish(State::Done(result));
        self.flights.remove(&self.key);
        self.finished = true;
    }
}

impl<V: Clone + Send + Sync + 'static, E: Send + Sync + 'static> Drop for LeaderGuard<'_, V, E> {
    fn drop(&mut self) {
        if !self.finished {
            self.flights.remove(&self.key);
            self.flight.finish(State::Abandoned);
        }
    }
}
