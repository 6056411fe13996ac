//! The small synchronisation helpers every module shares.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// A poisoned lock still guards consistent state (counters, queues, caches): a panic
/// elsewhere must not stop the server.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Completes once `flag` turns true, or at once when its sender is gone (nothing can set
/// it any more: the server is going away). The value is not held across the wait, so the
/// future stays `Send`.
pub async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|raised| *raised).await;
}
