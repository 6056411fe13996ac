//! The lock helper every module shares.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A poisoned lock still guards consistent state (counters, queues, caches): a panic
/// elsewhere must not stop the server.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
