//! How an HTTP server receives temporary AWS credentials: every request
//! signed with them (SigV4, by the official `aws-sigv4` crate), or the
//! credentials themselves in three headers for a server that calls AWS
//! with them.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// The headers of `deliver: headers`.
pub const ACCESS_KEY_HEADER: &str = "x-aws-access-key-id";
pub const SECRET_KEY_HEADER: &str = "x-aws-secret-access-key";
pub const SESSION_TOKEN_HEADER: &str = "x-aws-session-token";

/// Temporary credentials as a server receives them (`_meta` over stdio).
/// Its `Debug` shows only the key id.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// RFC 3339.
    pub expiration: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The three headers of `deliver: headers`, marked sensitive.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        [
            (ACCESS_KEY_HEADER, &self.access_key_id),
            (SECRET_KEY_HEADER, &self.secret_access_key),
            (SESSION_TOKEN_HEADER, &self.session_token),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let mut value = HeaderValue::from_str(value).ok()?;
            value.set_sensitive(true);
            Some((HeaderName::from_static(name), value))
        })
        .collect()
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("the request could not be signed: {0}")]
pub struct SigningError(String);

/// What one request is signed for.
pub struct Signing<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

impl Signing<'_> {
    /// The headers that sign `method` `uri` with `body` (`Authorization`,
    /// `X-Amz-Date`, `X-Amz-Security-Token`, `X-Amz-Content-Sha256`), to
    /// be sent with the request as it is, unchanged. Only the host and
    /// these are signed, so the transport's own headers may follow.
    pub fn sign(
        &self,
        credentials: &AwsCredentials,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SigningError> {
        let failed = |e: &dyn std::fmt::Display| SigningError(e.to_string());
        let identity = aws_credential_types::Credentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            Some(credentials.session_token.clone()),
            None,
            "aws-sts",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let no_headers = std::iter::empty::<(&str, &str)>();
        let request = SignableRequest::new(method, uri, no_headers, SignableBody::Bytes(body))
            .map_err(|e| failed(&e))?;
        let (instructions, _signature) =
            sign(request, &params).map_err(|e| failed(&e))?.into_parts();
        let (headers, _query) = instructions.into_parts();
        headers
            .into_iter()
            .map(|header| {
                let name = HeaderName::try_from(header.name()).map_err(|e| failed(&e))?;
                let mut value = HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
                value.set_sensitive(header.sensitive());
                Ok((name, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: "2026-12-03T10:00:00Z".into(),
        }
    }

    #[test]
    fn a_signature_covers_the_body_and_names_the_key_scope() {
        let signing = Signing {
            region: "us-east-1",
            service: "execute-api",
        };
        let uri = "http://127.0.0.1:9000/mcp";
        let signed = signing.sign(&credentials(), "POST", uri, b"{}").unwrap();
        let header = |name: &str| {
            let found = signed.iter().find(|(n, _)| n.as_str() == name);
            found.map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        let authorization = header("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/us-east-1/execute-api/aws4_request"));
        assert_eq!(header("x-amz-security-token").as_deref(), Some("token"));
        // SHA-256 of `{}`.
        assert_eq!(
            header("x-amz-content-sha256").as_deref(),
            Some("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
        let other = signing.sign(&credentials(), "POST", uri, b"{ }").unwrap();
        let other_authorization = other.iter().find(|(n, _)| n == "authorization").unwrap();
        assert_ne!(other_authorization.1.to_str().unwrap(), authorization);
        assert!(format!("{:?}", credentials()).contains("ASIAEXAMPLE"));
        assert!(!format!("{:?}", credentials()).contains("secret"));
    }

    #[test]
    fn delivered_credentials_are_three_sensitive_headers() {
        let headers = credentials().headers();
        assert_eq!(headers.len(), 3);
        assert!(headers.iter().all(|(_, v)| v.is_sensitive()));
        assert_eq!(
            AwsCredentials::from_json(&credentials().to_json()),
            Some(credentials())
        );
    }
}
