//! One connection per process that LISTENs to what other nodes NOTIFY: a secret changed
//! (every node drops its cache), a user, token or grant changed (every node forgets the tokens
//! it found), an execution was queued (idle workers wake), an execution
//! ended (those waiting for it wake). It reconnects by itself; while it is down, waiters still
//! wake on their own timeouts and caches on the generation check, so nothing depends on it for
//! correctness, only for speed.

use futures_util::StreamExt as _;
use std::sync::Weak;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, Config};

/// NOTIFY channel: a secret's value or state changed (payload: the new generation).
pub(crate) const SECRETS: &str = "kestrel_secrets";
/// NOTIFY channel: a user, token or grant changed.
pub(crate) const AUTH: &str = "kestrel_auth";
/// NOTIFY channel: an execution was queued.
pub(crate) const QUEUED: &str = "kestrel_queued";
/// NOTIFY channel: an execution ended.
pub(crate) const ENDED: &str = "kestrel_ended";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT: Duration = Duration::from_millis(500);

/// Listens until the store is dropped (which aborts the returned task).
pub(crate) fn spawn(config: Config, store: Weak<crate::Inner>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        while store.strong_count() > 0 {
            if let Err(error) = listen(&config, &store).await {
                crate::log_warning(&format!("PostgreSQL notifications: {error}"));
            }
            tokio::time::sleep(RECONNECT).await;
        }
    })
    .abort_handle()
}

async fn listen(config: &Config, store: &Weak<crate::Inner>) -> Result<(), String> {
    let tls = crate::tls::connector().map_err(|e| e.to_string())?;
    let (client, mut connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
    let statements = format!("LISTEN {SECRETS}; LISTEN {AUTH}; LISTEN {QUEUED}; LISTEN {ENDED}");
    let listening = client.batch_execute(&statements);
    // The connection must be polled for the LISTEN to complete.
    tokio::pin!(listening);
    loop {
        tokio::select! {
            done = &mut listening => {
                done.map_err(|e| e.to_string())?;
                // What changed while not listening: treat as everything.
                if let Some(inner) = store.upgrade() {
                    inner.on_notification(SECRETS, "");
                    inner.on_notification(AUTH, "");
                    inner.on_notification(QUEUED, "");
                    inner.signals.any_ended();
                }
                break;
            }
            message = messages.next() => {
                dispatch(store, message)?;
            }
        }
    }
    loop {
        let message = messages.next().await;
        dispatch(store, message)?;
    }
}

fn dispatch(
    store: &Weak<crate::Inner>,
    message: Option<Result<AsyncMessage, tokio_postgres::Error>>,
) -> Result<(), String> {
    match message {
        None => Err("the connection closed".into()),
        Some(Err(error)) => Err(error.to_string()),
        Some(Ok(AsyncMessage::Notification(note))) => {
            let Some(inner) = store.upgrade() else {
                return Err("the store was closed".into());
            };
            inner.on_notification(note.channel(), note.payload());
            Ok(())
        }
        Some(Ok(_)) => Ok(()),
    }
}
