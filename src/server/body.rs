//! Every request body as the handlers see it: read within the body timeout, and counted against
//! the budget of body bytes the whole server holds at once.
//!
//! `max_connections` x `max_body_bytes` would be gigabytes; the budget
//! (`[server] max_inflight_body_bytes`) is what bounds the memory request bodies take. Bytes are
//! taken from it up front for a declared `Content-Length`, else as chunks arrive, and given back
//! when the request has been answered (the handler holds the body until then). A request the
//! budget cannot take is refused (`503 {"error": "server busy"}`), never queued: a queue would
//! hold connections instead of bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::http::BodyStop;
use crate::metrics::Metrics;

/// The bytes of request bodies the server may hold at once, and the time a body may take.
#[derive(Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    timeout: Duration,
    /// Largest body any handler reads: a declared length above it is refused by the handler
    /// without reading, so it takes nothing from the budget.
    largest: usize,
    metrics: Arc<Metrics>,
}

/// What a request holds of the budget, and whether its body timed out; shared by the body and
/// the request's handling, given back when both are done.
#[derive(Default)]
pub struct Held {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    timed_out: AtomicBool,
}

impl Held {
    /// Whether the body did not arrive in time (the connection is then closed).
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> usize {
        self.permit.lock().map_or(0, |p| {
            p.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
        })
    }

    fn add(&self, permit: OwnedSemaphorePermit) {
        if let Ok(mut held) = self.permit.lock() {
            match held.as_mut() {
                Some(p) => p.merge(permit),
                None => *held = Some(permit),
            }
        }
    }
}

impl Budget {
    /// A budget of `bytes` (at least 1), bodies within `timeout`, the largest read being
    /// `largest` bytes.
    pub fn new(bytes: usize, timeout: Duration, largest: usize, metrics: Arc<Metrics>) -> Budget {
        Budget {
            bytes: Arc::new(Semaphore::new(bytes.clamp(1, Semaphore::MAX_PERMITS))),
            timeout,
            largest,
            metrics,
        }
    }

    /// Bytes of the budget not held by any request.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Wraps `body`; `None` when its declared length does not fit in the budget now.
    pub fn guard<B>(&self, body: B) -> Option<(GuardedBody<B>, Arc<Held>)>
    where
        B: Body,
    {
        let held = Arc::new(Held::default());
        let declared = body.size_hint().exact().or(Some(body.size_hint().lower()));
        if let Some(n) = declared.filter(|&n| n > 0 && n <= self.largest as u64) {
            let n = u32::try_from(n).ok()?;
            held.add(self.bytes.clone().try_acquire_many_owned(n).ok()?);
        }
        Some((
            GuardedBody {
                inner: body,
                budget: self.clone(),
                held: held.clone(),
                received: 0,
                sleep: None,
                done: false,
            },
            held,
        ))
    }
}

/// A request body read within the timeout and the budget; see the module documentation.
pub struct GuardedBody<B> {
    inner: B,
    budget: Budget,
    held: Arc<Held>,
    received: usize,
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // The clock starts when a handler first asks for the body.
        let timeout = this.budget.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len();
                    let held = this.held.bytes();
                    if this.received > held {
                        let more = u32::try_from(this.received - held).unwrap_or(u32::MAX);
                        match this.budget.bytes.clone().try_acquire_many_owned(more) {
                            Ok(p) => this.held.add(p),
                            Err(_) => {
                                this.done = true;
                                return Poll::Ready(Some(Err(Box::new(BodyStop::Busy))));
                            }
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if sleep.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    this.held.timed_out.store(true, Ordering::Relaxed);
                    this.budget.metrics.timed_out("body");
                    return Poll::Ready(Some(Err(Box::new(BodyStop::TooSlow(timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{BodyError, read_body};
    use http_body_util::Full;

    fn budget(bytes: usize, timeout: Duration) -> Budget {
        Budget::new(bytes, timeout, 1 << 20, Arc::new(Metrics::new()))
    }

    #[tokio::test]
    async fn declared_lengths_are_taken_up_front_and_given_back() {
        let b = budget(100, Duration::from_secs(5));
        let (body, held) = b.guard(Full::new(Bytes::from(vec![b'x'; 60]))).unwrap();
        assert_eq!(b.available(), 40);
        // A second one of 60 does not fit now.
        assert!(b.guard(Full::new(Bytes::from(vec![b'x'; 60]))).is_none());
        let got = read_body(body, 1000, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 60);
        // Held until the request is answered, not only until the body was read.
        assert_eq!(b.available(), 40);
        drop(held);
        assert_eq!(b.available(), 100);
    }

    #[tokio::test]
    async fn chunks_of_unknown_length_are_counted_as_they_come() {
        let b = budget(100, Duration::from_secs(5));
        let chunks = Chunks;
        let (body, held) = b.guard(chunks(3)).unwrap();
        assert_eq!(b.available(), 100);
        assert_eq!(
            read_body(body, 1000, Duration::from_secs(5))
                .await
                .unwrap()
                .len(),
            90
        );
        assert_eq!(b.available(), 10);
        drop(held);
        let (body, _held) = b.guard(chunks(4)).unwrap();
        assert_eq!(
            read_body(body, 1000, Duration::from_secs(5)).await,
            Err(BodyError::Busy)
        );
    }

    #[tokio::test]
    async fn a_slow_body_times_out_and_is_counted() {
        let metrics = Arc::new(Metrics::new());
        let b = Budget::new(100, Duration::from_millis(50), 1 << 20, metrics.clone());
        let (body, held) = b.guard(Stalled).unwrap();
        let got = read_body(body, 1000, Duration::from_secs(5)).await;
        assert_eq!(got, Err(BodyError::TooSlow(Duration::from_millis(50))));
        assert!(held.timed_out());
        assert!(
            metrics
                .render()
                .contains("tally_connections_timed_out_total{phase=\"body\"} 1")
        );
    }

    /// A body of `n` chunks of 30 bytes, of no declared length.
    struct Chunks(usize);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 == 0 {
                return Poll::Ready(None);
            }
            self.0 -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 30])))))
        }
    }

    /// A body whose next byte never comes.
    struct Stalled;

    impl Body for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }
}
