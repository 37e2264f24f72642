//! Change notices between hosts on one database: a write that changes what hosts keep in
//! memory (a course, a plugin) sends `pg_notify('xbhost_changes', ...)` in its transaction,
//! and every host listens on a connection of its own and forgets what changed. PostgreSQL
//! delivers a notice only when its transaction commits, to every listener, in commit order.
//!
//! A listener that loses its connection may have missed notices: it reports
//! [`Change::Everything`] once it listens again, so nothing stale outlives a reconnection.
//! It does so on its first `LISTEN` too: what the host read before it listened (a course a
//! page loaded while the listener was connecting) may have changed unheard.

use std::time::Duration;

use futures_util::StreamExt as _;

use super::contract::{Change, OnChange};
use super::pg_exec::PgShared;

/// How long the listener waits before reconnecting: at once after a connection that
/// listened (a terminated backend, a restart), then once a second while connecting fails.
const RECONNECT_AFTER_FAILURE: Duration = Duration::from_secs(1);
const RECONNECT_AFTER_LOSS: Duration = Duration::from_millis(50);

/// Adds `on_change` to those who hear of changes; the first starts the store's one
/// listening connection, which calls each of them in turn.
pub fn watch(shared: &PgShared, on_change: OnChange) {
    shared
        .watchers
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(on_change);
    if shared
        .listening
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        return;
    }
    let watchers = shared.watchers.clone();
    let everyone: OnChange = std::sync::Arc::new(move |change: &Change| {
        for watcher in watchers.read().unwrap_or_else(|e| e.into_inner()).iter() {
            watcher(change);
        }
    });
    shared.spawn(listen(
        shared.config.clone(),
        shared.tls.clone(),
        shared.name.clone(),
        everyone,
    ));
}

/// Listens for changes until the process ends, reconnecting when the connection is lost.
/// Runs on the store's runtime.
pub async fn listen(
    config: tokio_postgres::Config,
    tls: super::pg_tls::MakeRustlsConnect,
    name: String,
    on_change: OnChange,
) {
    loop {
        let (listened, outcome) = listen_once(&config, &tls, &on_change).await;
        match outcome {
            Ok(()) => tracing::warn!(database = %name, "the change listener's connection closed"),
            Err(e) => tracing::warn!(database = %name, "the change listener failed: {e}"),
        }
        if listened {
            // Until it listens again, notices go unheard: what it holds now is forgotten
            // (and whatever is read meanwhile, once it listens again). Once a loss, not
            // on every failed attempt while the database is down.
            on_change(&Change::Everything);
        }
        tokio::time::sleep(if listened {
            RECONNECT_AFTER_LOSS
        } else {
            RECONNECT_AFTER_FAILURE
        })
        .await;
    }
}

/// One connection's listening: whether it got to listen, and how it ended.
/// How long the listener's connection may be quiet before it is asked to answer, and how
/// long it has to: a connection lost without a word is noticed within their sum.
const PING_WHEN_QUIET: Duration = Duration::from_secs(1);
const PING_PATIENCE: Duration = Duration::from_secs(2);

async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &super::pg_tls::MakeRustlsConnect,
    on_change: &OnChange,
) -> (bool, Result<(), tokio_postgres::Error>) {
    let (client, mut connection) = match config.connect(tls.clone()).await {
        Ok(connected) => connected,
        Err(e) => return (false, Err(e)),
    };
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
    if listened.is_ok() {
        // Whatever was sent while no one listened was missed.
        tracing::debug!("listening for changes made by other hosts");
        on_change(&Change::Everything);
    }
    let did_listen = listened.is_ok();
    let outcome = match listened {
        Ok(()) => loop {
            match tokio::time::timeout(PING_WHEN_QUIET, received.recv()).await {
                Ok(Some(Ok(payload))) => on_change(&Change::decode(&payload)),
                Ok(Some(Err(e))) => break Err(e),
                Ok(None) => break Ok(()),
                Err(_quiet) => {
                    // A listener only waits: a network that dropped the connection without
                    // a word (a failover, a moved address) would leave this host deaf for
                    // as long as TCP takes to notice, minutes. So a quiet connection is
                    // asked to answer (LISTEN again: it changes nothing, and the
                    // connection keeps showing what it is for in pg_stat_activity), and
                    // one that does not is replaced.
                    match tokio::time::timeout(
                        PING_PATIENCE,
                        client.batch_execute("LISTEN xbhost_changes"),
                    )
                    .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => break Err(e),
                        Err(_) => {
                            tracing::warn!(
                                "the change listener's connection stopped answering; reconnecting"
                            );
                            break Ok(());
                        }
                    }
                }
            }
        },
        Err(e) => Err(e),
    };
    driver.abort();
    (did_listen, outcome)
}
