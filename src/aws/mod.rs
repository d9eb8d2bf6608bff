//! The control plane's own way into AWS: its identity from the standard
//! chain (environment, profile, web identity, container and instance
//! metadata) through the official SDK, one HTTPS client on rustls with
//! ring for every AWS service it calls, and bounded time per call.
//!
//! Used by the `aws-sts` credential provider and the DynamoDB catalog.

pub mod dynamodb;

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// How long one AWS operation may take in all (its retries included), and
/// how long to wait for a connection.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts per operation: one retry of a throttled or failed request.
const MAX_ATTEMPTS: u32 = 2;

/// One HTTPS client for every AWS service (its connections are pooled).
fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        })
        .clone()
}

/// The SDK's configuration for `region`: the standard credential chain,
/// our HTTP client and time limits. Each service client sets its own
/// endpoint, if any.
pub async fn sdk_config(region: &str) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .http_client(http_client())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}
