//! Group commit for commands run inside a shared target. Dozens of scenarios on one target each
//! need to install files, a `systemctl show`, a journal sync at about the same moment; one
//! exec each would queue them on the engine and cost seconds. A [`Coalescer`] runs the first
//! request at once and collects every request that arrives while a batch is running into the
//! next batch, so there is no waiting to fill a batch and no fixed delay: a lone request costs
//! one exec, fifty concurrent ones cost two or three.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// Bounds how much one batch gathers (a batch is one command line: it must stay reasonable).
const MAX_BATCH: usize = 256;
type BatchFn<Req, Resp> = Arc<dyn Fn(Vec<Req>) -> Pin<Box<dyn Future<Output = Vec<Resp>> + Send>> + Send + Sync>;

/// Runs batches of `Req` through one function that answers each with a `Resp`, in order.
pub struct Coalescer<Req, Resp> {
    tx: mpsc::UnboundedSender<Job<Req, Resp>>,
    task: tokio::task::JoinHandle<()>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Coalescer<Req, Resp> {
    /// `run` gets a batch and must return one answer per request, in the same order.
    pub fn new<F, Fut>(what: &'static str, run: F) -> Coalescer<Req, Resp>
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        let run: BatchFn<Req, Resp> = Arc::new(move |batch| Box::pin(run(batch)));
        let (tx, mut rx) = mpsc::unbounded_channel::<Job<Req, Resp>>();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                // Gather while the queue keeps growing: tasks that are runnable right now (a
                // crowd of scenarios released by the same event) get to enqueue before the
                // batch runs. A yield is no delay: gathering ends at the first yield that
                // brings nothing new.
                loop {
                    while let Ok(more) = rx.try_recv() {
                        jobs.push(more);
                    }
                    if jobs.len() >= MAX_BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                    if rx.is_empty() {
                        break;
                    }
                }
                let (requests, replies): (Vec<Req>, Vec<oneshot::Sender<Resp>>) = jobs.into_iter().unzip();
                let started = std::time::Instant::now();
                let size = requests.len();
                let answers = run(requests).await;
                tracing::debug!(what, size, ms = started.elapsed().as_millis() as u64, "batch");
                debug_assert_eq!(answers.len(), replies.len(), "a batch answers every request");
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // The requester may have given up (its scenario ended): nothing to do.
                    let _ = reply.send(answer);
                }
            }
        });
        Coalescer { tx, task }
    }

    /// Submit a request and wait for its answer; `None` when the coalescer is gone (its
    /// session was torn down) or dropped the request.
    pub async fn call(&self, request: Req) -> Option<Resp> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((request, reply)).ok()?;
        answer.await.ok()
    }
}

impl<Req, Resp> Drop for Coalescer<Req, Resp> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let c = Arc::new(Coalescer::new("test", move |batch: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                // Stands for an exec: requests arriving meanwhile queue for the next batch.
                tokio::time::sleep(Duration::from_millis(20)).await;
                batch.into_iter().map(|n| n * 10).collect::<Vec<u32>>()
            }
        }));
        let answers = futures_util::future::join_all((0..50u32).map(|n| {
            let c = c.clone();
            async move { c.call(n).await }
        }))
        .await;
        assert_eq!(answers, (0..50u32).map(|n| Some(n * 10)).collect::<Vec<_>>());
        let n = batches.load(Ordering::SeqCst);
        assert!((1..=3).contains(&n), "50 concurrent requests took {n} batches");
    }

    #[tokio::test]
    async fn a_lone_request_runs_at_once() {
        let c = Coalescer::new("test", |batch: Vec<&'static str>| async move { batch });
        let started = std::time::Instant::now();
        assert_eq!(c.call("x").await, Some("x"));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
