//! Change notices between hosts on one database: a write that changes what hosts keep in
//! memory (a course, a plugin) sends `pg_notify('xbhost_changes', ...)` in its transaction,
//! and every host listens on a connection of its own and forgets what changed. PostgreSQL
//! delivers a notice only when its transaction commits, to every listener, in commit order.
//!
//! A listener that loses its connection may have missed notices: it reports
//! [`Change::Everything`] once it listens again, so nothing stale outlives a reconnection.

use std::time::Duration;

use futures_util::StreamExt as _;

use super::contract::{Change, OnChange};

/// Listens for changes until the process ends, reconnecting (once a second at most) when
/// the connection is lost. Runs on the store's runtime.
pub async fn listen(config: tokio_postgres::Config, name: String, on_change: OnChange) {
    let mut first = true;
    loop {
        match listen_once(&config, &on_change, first).await {
            Ok(()) => tracing::warn!(database = %name, "the change listener's connection closed"),
            Err(e) => tracing::warn!(database = %name, "the change listener failed: {e}"),
        }
        first = false;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    on_change: &OnChange,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    // The connection's messages (notices among them) come only by polling it: a task
    // does, handing notices over a bounded channel.
    let (notices, mut received) = tokio::sync::mpsc::channel(1024);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let notice = match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => Ok(n.payload().to_string()),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let failed = notice.is_err();
            if notices.send(notice).await.is_err() || failed {
                break;
            }
        }
    });
    let listened = client.batch_execute("LISTEN xbhost_changes").await;
    if listened.is_ok() && !first {
        // Listening again: whatever was sent while no one listened was missed.
        on_change(&Change::Everything);
    }
    let outcome = match listened {
        Ok(()) => loop {
            match received.recv().await {
                Some(Ok(payload)) => on_change(&Change::decode(&payload)),
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            }
        },
        Err(e) => Err(e),
    };
    driver.abort();
    outcome
}
