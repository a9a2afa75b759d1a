//! Group commit of the two writes every execution makes on the queue's hot path: its creation
//! (by a server) and its end (by the worker that holds it). Under load, many executions start
//! and end at once; each write waiting for its own disk flush (`synchronous_commit=on`) and
//! making its own round trips would make PostgreSQL the bottleneck of every node. A
//! [`Batcher`] takes every request that arrived while earlier batches were being written and
//! writes them together, in one transaction of a few array statements, then answers each; a
//! lone request is written at once, so an idle node waits for nothing. A batch that fails is
//! written again one request at a time: a bad request gets its own error and fails no other.
//! A request whose caller stopped waiting is still written (an end is never lost that way).

use crate::executions::{ClaimedEnd, NewExecution};
use crate::{Inner, PgStore};
use kestrel_store::StoreError;
use std::future::Future;
use std::sync::{Arc, Weak};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most requests written together (a NOTIFY payload holds all the ids of a batch of
/// ends: this keeps it far below PostgreSQL's 8,000 bytes).
const MAX_BATCH: usize = 64;

/// Batches written at the same time, each on its own connection: one flushes to disk while
/// the next is being sent.
const WRITERS: usize = 2;

/// A kind of write that can be batched.
pub(crate) trait Batch: Send + Sync + Sized + 'static {
    type Output: Send + 'static;
    /// Writes `batch` in one transaction; each request's answer, in order.
    fn write(
        store: &PgStore,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send;
}

impl Batch for NewExecution {
    type Output = ();
    async fn write(store: &PgStore, batch: &[Self]) -> Result<Vec<()>, StoreError> {
        store.create_now(batch).await?;
        Ok(vec![(); batch.len()])
    }
}

impl Batch for ClaimedEnd {
    type Output = bool;
    async fn write(store: &PgStore, batch: &[Self]) -> Result<Vec<bool>, StoreError> {
        store.end_claimed_now(batch).await
    }
}

type Request<B> = (B, oneshot::Sender<Result<<B as Batch>::Output, StoreError>>);

/// Writes the requests of one kind in batches, for as long as the store lives.
pub(crate) struct Batcher<B: Batch> {
    requests: mpsc::UnboundedSender<Request<B>>,
}

impl<B: Batch> Batcher<B> {
    /// Starts the batcher of `store` (inside a tokio runtime); it stops with the store.
    pub(crate) fn spawn(store: Weak<Inner>) -> Self {
        let (requests, received) = mpsc::unbounded_channel();
        tokio::spawn(batch_forever(store, received));
        Self { requests }
    }

    /// Writes `request` with whatever else is waiting; its answer.
    pub(crate) async fn write(&self, request: B) -> Result<B::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((request, reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::backend("write to PostgreSQL", "the store is closed")
}

/// Gathers the waiting requests into a batch whenever a writer is free, and writes it.
async fn batch_forever<B: Batch>(
    store: Weak<Inner>,
    mut received: mpsc::UnboundedReceiver<Request<B>>,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    loop {
        let Ok(writer) = Arc::clone(&writers).acquire_owned().await else {
            return;
        };
        let Some(first) = received.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match received.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let Some(inner) = store.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            write_batch(&PgStore { inner }, batch).await;
            drop(writer);
        });
    }
}

/// Writes `batch` together, or one by one when that fails, and answers each request.
async fn write_batch<B: Batch>(store: &PgStore, batch: Vec<Request<B>>) {
    let (requests, replies): (Vec<B>, Vec<_>) = batch.into_iter().unzip();
    // A caller that stopped waiting needs no answer: sends that fail are ignored.
    match B::write(store, &requests).await {
        Ok(outputs) => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(Ok(output));
            }
        }
        Err(error) if requests.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(error));
            }
        }
        Err(_) => {
            for (request, reply) in requests.iter().zip(replies) {
                let answer = B::write(store, std::slice::from_ref(request)).await;
                let _ = reply.send(answer.map(|mut outputs| outputs.remove(0)));
            }
        }
    }
}
