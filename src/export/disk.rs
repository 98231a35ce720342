//! The worker of an exporter whose queue is on disk: takes records in order, sends each as a
//! batch with the same retries and refusal rules as the memory queue, and marks it done once
//! settled. At the shutdown deadline it stops taking: what is left stays for the next start.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Exporter, Outcome};
use crate::otlp::Request;
use crate::spool::Record;
use crate::spool::queue::DiskQueue;
use crate::telemetry::metrics::QueueLabels;

pub(super) async fn run_worker(exporter: Arc<Exporter>, queue: Arc<DiskQueue>, consumers: usize) {
    let slots = Arc::new(Semaphore::new(consumers));
    let mut in_flight = JoinSet::new();
    let labels = QueueLabels {
        exporter: exporter.name.to_string(),
    };
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let next = tokio::select! {
            biased;
            _ = exporter.give_up.cancelled() => break,
            next = queue.next() => next,
        };
        let record = match next {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => {
                tracing::error!(exporter = %exporter.name, %error, "Disk queue cannot be read; its worker stops, the records stay for the next start.");
                break;
            }
        };
        let (sender, done) = (Arc::clone(&exporter), Arc::clone(&queue));
        in_flight.spawn(async move {
            if send(&sender, &record).await == Outcome::Settled
                && let Err(error) = done.done(record.sequence).await
            {
                tracing::error!(exporter = %sender.name, %error, "Disk queue cannot record a delivery; the batch may be sent again.");
            }
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
        let (records, _) = queue.depth();
        exporter
            .metrics
            .exporter_queue_size
            .get_or_create(&labels)
            .set(records as i64);
    }
    while in_flight.join_next().await.is_some() {}
    if let Err(error) = queue.sync().await {
        tracing::error!(exporter = %exporter.name, %error, "Disk queue cannot be synced at shutdown.");
    }
}

/// Sends one record, as it was checked when received.
async fn send(exporter: &Exporter, record: &Record) -> Outcome {
    let request = Request::from_checked(record.signal, record.bytes.clone(), record.items as usize);
    exporter.deliver(&Arc::new(request)).await
}
