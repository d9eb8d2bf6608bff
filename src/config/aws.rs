//! The `aws-sts` credential provider's settings: the IAM role assumed for
//! each agent and tool, the inline session policy that narrows it, and how
//! the server receives the temporary credentials.

use serde::Deserialize;

use super::validate::is_trusted_url;

/// An IAM role the control plane assumes for each agent and tool, and how
/// the server receives the temporary credentials.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsStsConfig {
    pub role_arn: String,
    pub region: String,
    /// STS elsewhere than its regional endpoint (a VPC endpoint, a test).
    pub endpoint_url: Option<String>,
    /// An inline session policy (JSON) narrowing the role for one call:
    /// `{tool}`, `{agent}`, `{role}` and `{server}` are filled in
    /// (JSON-escaped).
    pub session_policy: Option<String>,
    /// Sign every HTTP request to the server with the credentials.
    pub sign: Option<AwsSigning>,
    /// The service name signed for (`execute-api`, `lambda`,
    /// `bedrock-agentcore`); default `execute-api`.
    pub service: Option<String>,
    /// Pass the credentials to the server as headers instead.
    pub deliver: Option<AwsDelivery>,
}

/// How requests are signed with temporary AWS credentials.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AwsSigning {
    Sigv4,
}

/// How temporary AWS credentials are handed to a server that uses them
/// itself.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AwsDelivery {
    /// `X-Aws-Access-Key-Id`, `X-Aws-Secret-Access-Key`,
    /// `X-Aws-Session-Token`.
    Headers,
}

/// The service signed for when `service` is not set.
pub const DEFAULT_SERVICE: &str = "execute-api";

impl AwsStsConfig {
    /// What is wrong with these settings, each with the field (`.role_arn`)
    /// it concerns.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !is_role_arn(&self.role_arn) {
            problems.push((
                ".role_arn",
                "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)".into(),
            ));
        }
        let region_chars = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        if self.region.is_empty() || !self.region.bytes().all(region_chars) {
            problems.push((".region", "must be an AWS region such as us-east-1".into()));
        }
        if let Some(url) = &self.endpoint_url
            && !is_trusted_url(url)
        {
            problems.push((
                ".endpoint_url",
                "must be an https:// URL, or http:// to a loopback host".into(),
            ));
        }
        if let Some(template) = &self.session_policy
            && let Err(problem) = SessionPolicy::new(template)
        {
            problems.push((".session_policy", problem));
        }
        if self.sign.is_some() && self.deliver.is_some() {
            problems.push(("", "set one of `sign` and `deliver`, not both".into()));
        }
        if self.service.is_some() && self.sign.is_none() {
            problems.push((".service", "only applies with `sign: sigv4`".into()));
        }
        problems
    }

    /// The service requests are signed for.
    pub fn service(&self) -> &str {
        self.service.as_deref().unwrap_or(DEFAULT_SERVICE)
    }
}

/// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
fn is_role_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty())
    )
}

/// An inline session policy with placeholders, checked to be JSON once
/// they are filled in.
#[derive(Debug, Clone)]
pub struct SessionPolicy(String);

/// What a session policy's placeholders are filled with.
pub struct PolicyFill<'a> {
    pub tool: &'a str,
    pub agent: &'a str,
    pub role: &'a str,
    pub server: &'a str,
}

impl SessionPolicy {
    /// STS refuses a packed inline policy beyond this many characters.
    const MAX_LEN: usize = 2048;

    pub fn new(template: &str) -> Result<Self, String> {
        let policy = Self(template.to_owned());
        let example = PolicyFill {
            tool: "tool",
            agent: "agent",
            role: "role",
            server: "server",
        };
        let filled = policy.fill(&example);
        let parsed: serde_json::Value = serde_json::from_str(&filled)
            .map_err(|e| format!("is not JSON once filled in: {e}"))?;
        if !parsed.is_object() {
            return Err("must be a JSON policy document (an object)".into());
        }
        if filled.len() > Self::MAX_LEN {
            return Err(format!("is longer than STS's {} characters", Self::MAX_LEN));
        }
        Ok(policy)
    }

    /// The policy for one call: each placeholder replaced by its value,
    /// escaped for a JSON string (so a name cannot change the policy's
    /// structure).
    pub fn fill(&self, with: &PolicyFill<'_>) -> String {
        let escaped = |value: &str| {
            let quoted = serde_json::to_string(value).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_owned()
        };
        self.0
            .replace("{tool}", &escaped(with.tool))
            .replace("{agent}", &escaped(with.agent))
            .replace("{role}", &escaped(with.role))
            .replace("{server}", &escaped(with.server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_recognised() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/mcp-marketdata"));
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::123456789012:role/path/to/r"
        ));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/bob"));
        assert!(!is_role_arn("arn:aws:iam::1234:role/r"));
        assert!(!is_role_arn("arn:aws:s3:::bucket"));
        assert!(!is_role_arn("role/r"));
    }

    #[test]
    fn a_session_policy_is_filled_in_without_changing_its_structure() {
        let template = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/POST/{tool}", "Condition": {"StringEquals": {"aws:PrincipalTag/agent": "{agent}"}}}]}"#;
        let policy = SessionPolicy::new(template).unwrap();
        let fill = PolicyFill {
            tool: "quote",
            agent: "evil\", \"Effect\": \"Deny",
            role: "r",
            server: "s",
        };
        let filled: serde_json::Value = serde_json::from_str(&policy.fill(&fill)).unwrap();
        let statement = &filled["Statement"][0];
        assert_eq!(
            statement["Resource"],
            "arn:aws:execute-api:*:*:*/*/POST/quote"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:PrincipalTag/agent"],
            "evil\", \"Effect\": \"Deny"
        );
        assert_eq!(statement["Effect"], "Allow");
        assert!(SessionPolicy::new("{tool}").is_err());
        assert!(SessionPolicy::new("[1]").is_err());
    }
}
