//! The `aws-sts` provider: temporary AWS credentials from STS `AssumeRole`
//! for each agent, server and tool.
//!
//! Each call's credentials are the configured role narrowed to that call:
//! the role session is named after the agent (so CloudTrail names it), it
//! carries session tags naming the agent, its role, the logical server and
//! the tool (for `aws:PrincipalTag` conditions), and, where configured, an
//! inline session policy filled in for that tool. They last the shortest
//! time STS allows and are cached per agent, role and tool until a minute
//! before they expire, so a busy agent costs one `AssumeRole` per quarter
//! hour, not one per call. The control plane's own requests to the server
//! (handshake, listings, its event stream) use credentials of a session
//! named after the control plane itself, without the session policy.
//!
//! The credentials travel as [`AwsCredentials`] JSON inside the call's
//! [`Credential`]: a stdio server reads them from `_meta`; for an HTTP
//! server the upstream client signs with them or puts them in headers
//! ([`super::sigv4`]). They are never logged or audited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_sts::types::Tag;
use futures::future::BoxFuture;
use sha2::Digest;
use tokio::sync::OnceCell;

use super::mint::{Grant, Minter};
use super::provider::Provider;
use super::sigv4::AwsCredentials;
use super::{Credential, CredentialError};
use crate::config::aws::{AwsStsConfig, PolicyFill, SessionPolicy};

/// The shortest session STS grants.
const DURATION_SECONDS: i32 = 900;
/// Cached credentials are not used in their last minute.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Beyond this many cached sessions the cache starts over.
const CACHE_LIMIT: usize = 10_000;
/// STS's limits on a role session name and a tag value.
const SESSION_NAME_MAX: usize = 64;
const TAG_VALUE_MAX: usize = 256;

/// (agent, role, scope): whose credentials, for what.
type Key = (String, String, String);
/// One key's credentials and when to stop using them, once assumed; held
/// while they are being assumed.
type Slot = tokio::sync::Mutex<Option<(AwsCredentials, SystemTime)>>;

pub(super) struct AwsSts {
    config: AwsStsConfig,
    policy: Option<SessionPolicy>,
    client: OnceCell<aws_sdk_sts::Client>,
    cache: Mutex<HashMap<Key, Arc<Slot>>>,
}

impl AwsSts {
    pub(super) fn new(config: &AwsStsConfig) -> Result<Self, String> {
        let policy = (config.session_policy.as_deref())
            .map(SessionPolicy::new)
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            policy,
            client: OnceCell::new(),
            cache: Mutex::default(),
        })
    }

    /// The STS client, made on first use (loading the control plane's own
    /// AWS identity is asynchronous).
    async fn client(&self) -> &aws_sdk_sts::Client {
        self.client
            .get_or_init(|| async {
                let sdk = crate::aws::sdk_config(&self.config.region).await;
                let mut config = aws_sdk_sts::config::Builder::from(&sdk);
                if let Some(url) = &self.config.endpoint_url {
                    config = config.endpoint_url(url);
                }
                aws_sdk_sts::Client::from_conf(config.build())
            })
            .await
    }

    /// The credentials for `grant`: cached, or assumed now. Callers that
    /// ask for the same key at once wait for one `AssumeRole` (an agent's
    /// burst of first calls is one STS request, not one each).
    pub(super) async fn credentials(
        &self,
        grant: &Grant<'_>,
    ) -> Result<AwsCredentials, CredentialError> {
        let key = (
            grant.agent.to_owned(),
            grant.role.to_owned(),
            grant.scope.to_owned(),
        );
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_LIMIT && !cache.contains_key(&key) {
                cache.clear();
            }
            cache.entry(key).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some((credentials, until)) = &*held
            && *until > SystemTime::now()
        {
            return Ok(credentials.clone());
        }
        let (credentials, expires) = self.assume(grant).await?;
        *held = (expires.duration_since(SystemTime::now()).ok())
            .filter(|left| *left > EXPIRY_MARGIN)
            .map(|_| (credentials.clone(), expires - EXPIRY_MARGIN));
        Ok(credentials)
    }

    async fn assume(
        &self,
        grant: &Grant<'_>,
    ) -> Result<(AwsCredentials, SystemTime), CredentialError> {
        let tags = [
            ("agent", grant.agent),
            ("role", grant.role),
            ("server", grant.server),
            ("tool", grant.scope),
        ]
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(tag_value(value)).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CredentialError::Sts(format!("a session tag is malformed: {e}")))?;
        // The control plane's own session (no tool) keeps the role's rights:
        // it lists what the server offers.
        let narrowed = self.policy.as_ref().filter(|_| !grant.scope.is_empty());
        let policy = narrowed.map(|policy| {
            policy.fill(&PolicyFill {
                tool: grant.scope,
                agent: grant.agent,
                role: grant.role,
                server: grant.server,
            })
        });
        let answer = self
            .client()
            .await
            .assume_role()
            .role_arn(&self.config.role_arn)
            .role_session_name(session_name(grant.agent))
            .duration_seconds(DURATION_SECONDS)
            .set_tags(Some(tags))
            .set_policy(policy)
            .send()
            .await
            .map_err(|error| CredentialError::Sts(sts_failure(&error)))?;
        let issued = answer
            .credentials()
            .ok_or_else(|| CredentialError::Sts("STS answered without credentials".into()))?;
        let expires = SystemTime::try_from(*issued.expiration())
            .map_err(|_| CredentialError::Sts("STS answered an unreadable expiry".into()))?;
        let credentials = AwsCredentials {
            access_key_id: issued.access_key_id().to_owned(),
            secret_access_key: issued.secret_access_key().to_owned(),
            session_token: issued.session_token().to_owned(),
            expiration: humantime_serde::re::humantime::format_rfc3339_seconds(expires).to_string(),
        };
        Ok((credentials, expires))
    }

    /// The credentials of the control plane's own session with the server.
    pub(super) async fn for_control_plane(
        &self,
        minter: &Minter,
        server: &str,
    ) -> Result<AwsCredentials, CredentialError> {
        let grant = Grant::for_control_plane(minter.issuer(), server);
        self.credentials(&grant).await
    }
}

/// Why an `AssumeRole` failed, in words safe for logs and the audit trail
/// (the error code STS gave, or how the request failed; never a URL or a
/// credential).
fn sts_failure<E, R>(error: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata,
{
    use aws_sdk_sts::error::SdkError;
    match error {
        SdkError::ServiceError(service) => format!(
            "STS refused AssumeRole: {}",
            service.err().code().unwrap_or("unknown error")
        ),
        SdkError::TimeoutError(_) => "STS did not answer in time".into(),
        SdkError::DispatchFailure(_) => "STS is unreachable".into(),
        SdkError::ResponseError(_) => "STS gave an unreadable answer".into(),
        SdkError::ConstructionFailure(_) => {
            "the AssumeRole request could not be made (no AWS identity for the control plane?)"
                .into()
        }
        _ => "AssumeRole failed".into(),
    }
}

/// A role session name for `agent`: STS's characters (`[\w+=,.@-]`), at
/// most 64 of them; a longer id keeps its start and a digest of the whole,
/// so two agents never share a name.
pub fn session_name(agent: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let mut name: String = agent
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    // Every character is ASCII now, so truncating cannot split one.
    if name.len() > SESSION_NAME_MAX || agent.chars().any(|c| !allowed(c)) {
        let digest = hex::encode(&sha2::Sha256::digest(agent.as_bytes())[..6]);
        name.truncate(SESSION_NAME_MAX - digest.len() - 1);
        name = format!("{name}-{digest}");
    }
    if name.len() < 2 {
        name = format!("mcp-{name}");
    }
    name
}

/// A session tag value: STS's characters (letters, digits, spaces and
/// `_.:/=+-@`), at most 256.
fn tag_value(value: &str) -> String {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    value
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .take(TAG_VALUE_MAX)
        .collect()
}

impl Provider for AwsSts {
    fn issue<'a>(
        &'a self,
        _minter: &'a Minter,
        grant: &'a Grant<'a>,
    ) -> BoxFuture<'a, Result<Option<Credential>, CredentialError>> {
        Box::pin(async move {
            let credentials = self.credentials(grant).await?;
            Ok(Some(Credential::new(credentials.to_json())))
        })
    }

    /// The connection's credentials come from STS too, asynchronously
    /// ([`AwsSts::for_control_plane`]), when a request needs them.
    fn for_connection(&self, _minter: &Minter, _server: &str) -> Option<Credential> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_keep_to_sts_characters_and_length() {
        assert_eq!(session_name("agent-7"), "agent-7");
        assert_eq!(session_name("a@b.example"), "a@b.example");
        let odd = session_name("spiffe://prod/ns/agent 1");
        assert!(odd.starts_with("spiffe---prod-ns-agent-1-"), "{odd}");
        assert_ne!(odd, session_name("spiffe://prod/ns/agent?1"));
        let long = "x".repeat(100);
        assert_eq!(session_name(&long).len(), 64);
        assert_ne!(session_name(&long), session_name(&"x".repeat(101)));
        assert_eq!(session_name("a"), "mcp-a");
        assert!(
            session_name(&long)
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        );
    }

    #[test]
    fn tag_values_keep_to_sts_characters() {
        assert_eq!(tag_value("agent-7"), "agent-7");
        assert_eq!(tag_value("prompt:brief"), "prompt:brief");
        assert_eq!(tag_value("a\"b<c>"), "a_b_c_");
        assert_eq!(tag_value(&"v".repeat(300)).len(), 256);
    }
}
