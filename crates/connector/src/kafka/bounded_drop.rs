//! A librdkafka client whose last handle is dropped within a bound.
//!
//! rust-rdkafka's `Drop` for a consumer in a group closes it (`rd_kafka_consumer_close`:
//! revoke, final commit, LeaveGroup) and polls until librdkafka reports it closed, with no bound.
//! With the group coordinator gone (a broker that went away, a test's mock cluster dropped
//! before a panicking pipeline) that can take forever, and whatever drops the last handle (a
//! runtime worker, and the runtime's shutdown behind it) waits with it: a failure turned into a
//! silent stall (CI's 90 minutes, once). [`BoundedDrop`] runs the drop on a thread of its own and
//! waits at most its bound; past it the client is left behind with an error line and the caller
//! goes on. For a consumer nothing is lost: only offsets already stored are ever committed, and
//! the broker ends the membership after `kafka.session_timeout_ms`.

use std::sync::mpsc;
use std::time::Duration;

/// `T`, whose drop takes at most `bound` of its dropper's time; see the module header.
pub struct BoundedDrop<T: Send + 'static> {
    /// `None` only inside `drop`.
    inner: Option<T>,
    bound: Duration,
    /// Named in the error line: what was left behind.
    what: &'static str,
}

impl<T: Send + 'static> BoundedDrop<T> {
    /// Wraps `inner`, `what` naming it in the error line.
    pub fn new(inner: T, bound: Duration, what: &'static str) -> Self {
        Self {
            inner: Some(inner),
            bound,
            what,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for BoundedDrop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.inner.as_ref().expect("taken only in drop")
    }
}

impl<T: Send + 'static> Drop for BoundedDrop<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let (done_tx, done) = mpsc::channel::<()>();
        let dropping = std::thread::Builder::new()
            .name("ads-client-close".into())
            .spawn(move || {
                drop(inner);
                let _ = done_tx.send(());
            });
        let Ok(dropping) = dropping else {
            tracing::error!(
                message = "Cannot start a thread to close a Kafka client; leaving it open.",
                client = self.what
            );
            return;
        };
        match done.recv_timeout(self.bound) {
            Ok(()) => {
                let _ = dropping.join();
            }
            Err(_) => tracing::error!(
                message = "A Kafka client did not close in time; going on without it.",
                client = self.what,
                timeout_s = self.bound.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;

    /// Drops by waiting for a message that never comes (a close that never completes).
    struct NeverCloses(Mutex<mpsc::Receiver<()>>);

    impl Drop for NeverCloses {
        fn drop(&mut self) {
            let _ = self.0.lock().unwrap().recv();
        }
    }

    #[test]
    fn a_drop_that_never_completes_is_left_behind_after_the_bound() {
        let (keep_open, rx) = mpsc::channel::<()>();
        let wrapped = BoundedDrop::new(
            NeverCloses(Mutex::new(rx)),
            Duration::from_millis(200),
            "test",
        );
        let (returned_tx, returned) = mpsc::channel();
        std::thread::spawn(move || {
            let start = Instant::now();
            drop(wrapped);
            let _ = returned_tx.send(start.elapsed());
        });
        // Without the bound the drop would wait for `keep_open` forever; the 30 s here only
        // detects that hang.
        let took = returned
            .recv_timeout(Duration::from_secs(30))
            .expect("the drop did not return");
        assert!(
            took >= Duration::from_millis(200),
            "returned after {took:?}"
        );
        drop(keep_open);
    }

    #[test]
    fn a_drop_that_completes_is_waited_for() {
        let dropped = Arc::new(Mutex::new(false));
        struct Flags(Arc<Mutex<bool>>);
        impl Drop for Flags {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(50));
                *self.0.lock().unwrap() = true;
            }
        }
        drop(BoundedDrop::new(
            Flags(dropped.clone()),
            Duration::from_secs(30),
            "test",
        ));
        assert!(
            *dropped.lock().unwrap(),
            "returned before the inner drop finished"
        );
    }
}
