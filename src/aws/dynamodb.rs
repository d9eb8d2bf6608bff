//! A DynamoDB table holding a catalog: one item per entity, addressed by
//! a `dynamodb://TABLE?region=...` URL. This module only reads and writes
//! items (`pk` and `body`, both strings); what they mean is the live
//! catalog's business (`live::items`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    PutRequest, ScalarAttributeType, WriteRequest,
};

/// The partition key and the one other attribute of every item.
pub const KEY: &str = "pk";
pub const BODY: &str = "body";
/// How often the table is read again for changes, unless `poll=` says.
const DEFAULT_POLL: Duration = Duration::from_secs(10);
/// The most writes one `BatchWriteItem` takes.
const BATCH: usize = 25;

/// Where a catalog table is: `dynamodb://TABLE?region=R&endpoint_url=U&poll=10s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUrl {
    pub table: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub poll: Duration,
}

/// Why a table URL, or the table, could not be used. Never holds a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("not a catalog table URL ({0}); expected dynamodb://TABLE?region=REGION")]
    Url(String),
    #[error("DynamoDB table {table}: {what}")]
    Dynamo { table: String, what: String },
}

impl TableUrl {
    /// Whether `text` names a table rather than a file.
    pub fn is_table(text: &str) -> bool {
        text.starts_with("dynamodb://")
    }

    pub fn parse(text: &str) -> Result<Self, TableError> {
        let bad = |why: &str| TableError::Url(why.to_owned());
        let url = url::Url::parse(text).map_err(|e| TableError::Url(e.to_string()))?;
        if url.scheme() != "dynamodb" {
            return Err(bad("the scheme is not dynamodb"));
        }
        let table = url.host_str().unwrap_or_default().to_owned();
        let table_chars = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if !(3..=255).contains(&table.len()) || !table.bytes().all(table_chars) {
            return Err(bad(
                "the table name must be 3 to 255 of a-z, A-Z, 0-9, _ - .",
            ));
        }
        let mut region = std::env::var("AWS_REGION").ok();
        let mut endpoint_url = None;
        let mut poll = DEFAULT_POLL;
        for (key, value) in url.query_pairs() {
            match &*key {
                "region" => region = Some(value.into_owned()),
                "endpoint_url" => endpoint_url = Some(value.into_owned()),
                "poll" => {
                    poll = humantime_serde::re::humantime::parse_duration(&value)
                        .ok()
                        .filter(|p| !p.is_zero())
                        .ok_or_else(|| bad("poll must be a duration such as 10s"))?;
                }
                other => return Err(TableError::Url(format!("unknown parameter `{other}`"))),
            }
        }
        let region = region.ok_or_else(|| bad("no region (add ?region=, or set AWS_REGION)"))?;
        Ok(Self {
            table,
            region,
            endpoint_url,
            poll,
        })
    }
}

/// A catalog table and a client for it.
pub struct Table {
    url: TableUrl,
    client: aws_sdk_dynamodb::Client,
}

impl Table {
    pub async fn open(url: &TableUrl) -> Self {
        let sdk = super::sdk_config(&url.region).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = &url.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        Self {
            url: url.clone(),
            client: aws_sdk_dynamodb::Client::from_conf(config.build()),
        }
    }

    pub fn url(&self) -> &TableUrl {
        &self.url
    }

    fn failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
        &self,
        operation: &str,
        error: &aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> TableError {
        use aws_sdk_dynamodb::error::SdkError;
        let what = match error {
            SdkError::ServiceError(service) => format!(
                "{operation} refused: {}",
                service.err().code().unwrap_or("unknown error")
            ),
            SdkError::TimeoutError(_) => format!("{operation}: no answer in time"),
            SdkError::DispatchFailure(_) => format!("{operation}: DynamoDB is unreachable"),
            _ => format!("{operation} failed"),
        };
        TableError::Dynamo {
            table: self.url.table.clone(),
            what,
        }
    }

    /// Every item, `pk` -> `body` (a consistent read, page by page).
    pub async fn items(&self) -> Result<BTreeMap<String, String>, TableError> {
        let mut items = BTreeMap::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.url.table)
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed("Scan", &e))?;
            for item in page.items() {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                match (text(KEY), text(BODY)) {
                    (Some(key), Some(body)) => {
                        items.insert(key, body);
                    }
                    _ => {
                        return Err(TableError::Dynamo {
                            table: self.url.table.clone(),
                            what: format!("an item lacks a string `{KEY}` or `{BODY}`"),
                        });
                    }
                }
            }
        }
        Ok(items)
    }

    /// Make the table hold exactly `items`: each written, every other
    /// item deleted. The table is created first if there is none.
    pub async fn replace(&self, items: &BTreeMap<String, String>) -> Result<(), TableError> {
        self.create_if_missing().await?;
        let stale: Vec<String> = (self.items().await?.into_keys())
            .filter(|key| !items.contains_key(key))
            .collect();
        let puts = items.iter().map(|(key, body)| {
            let put = PutRequest::builder()
                .item(KEY, AttributeValue::S(key.clone()))
                .item(BODY, AttributeValue::S(body.clone()))
                .build();
            put.map(|p| WriteRequest::builder().put_request(p).build())
        });
        let deletes = stale.iter().map(|key| {
            let delete = DeleteRequest::builder()
                .key(KEY, AttributeValue::S(key.clone()))
                .build();
            delete.map(|d| WriteRequest::builder().delete_request(d).build())
        });
        let writes: Vec<WriteRequest> =
            puts.chain(deletes)
                .collect::<Result<_, _>>()
                .map_err(|e| TableError::Dynamo {
                    table: self.url.table.clone(),
                    what: e.to_string(),
                })?;
        for batch in writes.chunks(BATCH) {
            let mut pending = Some(batch.to_vec());
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.url.table, requests)
                    .send()
                    .await
                    .map_err(|e| self.failed("BatchWriteItem", &e))?;
                pending =
                    (answer.unprocessed_items).and_then(|mut left| left.remove(&self.url.table));
            }
        }
        Ok(())
    }

    async fn create_if_missing(&self) -> Result<(), TableError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.url.table)
            .send()
            .await;
        match described {
            Ok(_) => return Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(self.failed("DescribeTable", &error)),
        }
        let failed = |e: aws_sdk_dynamodb::error::BuildError| TableError::Dynamo {
            table: self.url.table.clone(),
            what: e.to_string(),
        };
        self.client
            .create_table()
            .table_name(&self.url.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(failed)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(failed)?,
            )
            .send()
            .await
            .map_err(|e| self.failed("CreateTable", &e))?;
        tracing::info!(table = %self.url.table, "catalog table created");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_name_the_table_region_endpoint_and_poll() {
        let url = TableUrl::parse(
            "dynamodb://mcp-catalog?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&poll=2s",
        )
        .unwrap();
        assert_eq!(url.table, "mcp-catalog");
        assert_eq!(url.region, "eu-west-1");
        assert_eq!(url.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(url.poll, Duration::from_secs(2));
        for (text, why) in [
            ("dynamodb://x?region=r", "the table name must be 3 to 255"),
            (
                "dynamodb://table?region=r&colour=blue",
                "unknown parameter `colour`",
            ),
            (
                "dynamodb://table?region=r&poll=0s",
                "poll must be a duration",
            ),
            ("s3://table?region=r", "the scheme is not dynamodb"),
        ] {
            let refused = TableUrl::parse(text).err().map(|e| e.to_string());
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(why)),
                "{text}: {refused:?}"
            );
        }
        assert!(TableUrl::is_table("dynamodb://t"));
        assert!(!TableUrl::is_table("catalog.yaml"));
    }
}
