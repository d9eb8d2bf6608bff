//! The Kafka sink: each record a message on a topic, keyed by its trace id
//! (so a consumer partitioning by key sees a trace in order), for shipping
//! the audit trail downstream. The control plane creates the topic if it
//! does not exist. Consumers dedupe replays by the record's `id`: Kafka has
//! no unique key, so a batch retried after an unacknowledged write may
//! appear twice.

use std::time::Duration;

use futures::future::BoxFuture;
use rskafka::chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::record::StoredRecord;
use super::spool::Sink;

/// How long connecting and creating the topic may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct KafkaSink {
    name: String,
    brokers: Vec<String>,
    topic: String,
    partitions: i32,
    /// One client per partition, once connected.
    connected: Option<(Client, Vec<PartitionClient>)>,
}

impl KafkaSink {
    pub fn new(brokers: Vec<String>, topic: String, partitions: i32) -> Self {
        Self {
            name: format!("kafka:{topic}"),
            brokers,
            topic,
            partitions: partitions.max(1),
            connected: None,
        }
    }

    async fn connect(&mut self) -> Result<&[PartitionClient], String> {
        if self.connected.is_none() {
            let connecting = async {
                let client = ClientBuilder::new(self.brokers.clone())
                    .build()
                    .await
                    .map_err(|e| format!("cannot connect to Kafka: {e}"))?;
                let exists = client
                    .list_topics()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|t| t.name == self.topic);
                if !exists {
                    let controller = client.controller_client().map_err(|e| e.to_string())?;
                    // Another replica may create it at the same moment.
                    let _ = controller
                        .create_topic(&self.topic, self.partitions, 1, 5_000)
                        .await;
                }
                let mut partitions = Vec::new();
                for partition in 0..self.partitions {
                    partitions.push(
                        client
                            .partition_client(&self.topic, partition, UnknownTopicHandling::Retry)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                Ok::<_, String>((client, partitions))
            };
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| "connecting to Kafka timed out".to_string())??;
            self.connected = Some(connected);
        }
        Ok(self
            .connected
            .as_ref()
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default())
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a mut self, batch: &'a [StoredRecord]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let partitions = self.connect().await?;
            let count = partitions.len();
            let mut by_partition: Vec<Vec<Record>> = vec![Vec::new(); count];
            for record in batch {
                let partition = partition_of(&record.trace_id, count);
                by_partition[partition].push(Record {
                    key: Some(record.trace_id.clone().into_bytes()),
                    value: Some(record.json.clone().into_bytes()),
                    headers: Default::default(),
                    timestamp: DateTime::<Utc>::from_timestamp_millis(record.time_ms)
                        .unwrap_or_default(),
                });
            }
            for (client, records) in partitions.iter().zip(by_partition) {
                if records.is_empty() {
                    continue;
                }
                if let Err(error) = client.produce(records, Compression::NoCompression).await {
                    self.connected = None;
                    return Err(format!("Kafka produce failed: {error}"));
                }
            }
            Ok(())
        })
    }
}

/// The partition of a trace id (stable, so a trace stays on one partition).
fn partition_of(trace_id: &str, partitions: usize) -> usize {
    let hash = trace_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % partitions as u64) as usize
}
