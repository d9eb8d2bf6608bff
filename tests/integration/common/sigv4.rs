//! An HTTP upstream that takes only SigV4-signed requests, as API Gateway
//! with IAM authorization does: each request's signature is checked, by
//! an implementation of the algorithm written here from AWS's
//! specification (not the SDK's signer the control plane uses), against
//! the secret key STS issued with the request's key id; a request that
//! does not verify gets 403 and never reaches the MCP server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::aws::StsRecorder;

/// A request as it arrived, to replay (tampered) in a test.
#[derive(Clone)]
pub struct Arrived {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the upstream's gate saw.
pub struct Verifier {
    sts: StsRecorder,
    pub verified: AtomicUsize,
    pub rejected: Mutex<Vec<String>>,
    /// The last signed POST that verified.
    pub last_post: Mutex<Option<Arrived>>,
    /// The key ids of verified requests.
    pub keys: Mutex<Vec<String>>,
}

impl Verifier {
    pub fn new(sts: StsRecorder) -> Arc<Self> {
        Arc::new(Self {
            sts,
            verified: AtomicUsize::new(0),
            rejected: Mutex::default(),
            last_post: Mutex::default(),
            keys: Mutex::default(),
        })
    }

    pub fn verified(&self) -> usize {
        self.verified.load(Ordering::SeqCst)
    }

    pub fn rejected(&self) -> Vec<String> {
        self.rejected.lock().unwrap().clone()
    }

    /// Whether `method` `path` with `headers` and `body` carries a valid
    /// signature for `service`; the key id that signed it.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        service: &str,
    ) -> Result<String, String> {
        let header = |name: &str| {
            (headers.get(name))
                .and_then(|v| v.to_str().ok())
                .ok_or(format!("no {name} header"))
        };
        let authorization = header("authorization")?;
        let fields = authorization
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or("not a SigV4 Authorization")?;
        let field = |name: &str| {
            fields
                .split(", ")
                .find_map(|f| f.strip_prefix(name))
                .ok_or(format!("no {name} in Authorization"))
        };
        let credential = field("Credential=")?;
        let signed_headers = field("SignedHeaders=")?;
        let signature = field("Signature=")?;
        let mut scope = credential.splitn(2, '/');
        let key_id = scope.next().unwrap_or_default();
        let scope = scope.next().ok_or("no credential scope")?;
        let parts: Vec<&str> = scope.split('/').collect();
        let [date, region, signed_service, "aws4_request"] = parts.as_slice() else {
            return Err(format!("malformed scope {scope}"));
        };
        if *signed_service != service {
            return Err(format!("signed for {signed_service}, not {service}"));
        }
        let secret = self.sts.secret_of(key_id).ok_or("a key STS never issued")?;
        let amz_date = header("x-amz-date")?;
        let payload = hex::encode(Sha256::digest(body));
        if let Ok(declared) = header("x-amz-content-sha256")
            && declared != payload
        {
            return Err("the body is not the one signed".into());
        }
        let mut canonical_headers = String::new();
        for name in signed_headers.split(';') {
            let value = header(name)?;
            canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
        }
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let canonical =
            format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload}");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = format!("AWS4{secret}").into_bytes();
        for part in [*date, *region, *signed_service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        if hex::encode(hmac(&key, to_sign.as_bytes())) != signature {
            return Err("the signature does not match".into());
        }
        Ok(key_id.to_owned())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The gate, as axum middleware in front of the MCP server.
pub async fn gate(State(verifier): State<Arc<Verifier>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = parts.method.as_str();
    match verifier.check(method, &path, &parts.headers, &body, "execute-api") {
        Ok(key) => {
            verifier.verified.fetch_add(1, Ordering::SeqCst);
            verifier.keys.lock().unwrap().push(key);
            if method == "POST" {
                *verifier.last_post.lock().unwrap() = Some(Arrived {
                    path,
                    headers: parts.headers.clone(),
                    body: body.clone(),
                });
            }
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(why) => {
            verifier.rejected.lock().unwrap().push(why.clone());
            (StatusCode::FORBIDDEN, why).into_response()
        }
    }
}

/// The gate of an upstream that takes the credentials themselves
/// (`deliver: headers`): each request must carry a key id STS issued, its
/// secret key and a session token; the key ids seen are kept.
pub async fn credentials_gate(
    State(verifier): State<Arc<Verifier>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let header = |name: &str| {
        (headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let key = header("x-aws-access-key-id").unwrap_or_default();
    let matches = (verifier.sts.secret_of(&key)).is_some_and(|secret| {
        header("x-aws-secret-access-key").as_deref() == Some(&secret)
            && header("x-aws-session-token").is_some_and(|t| !t.is_empty())
            && header("authorization").is_none()
    });
    if !matches {
        verifier
            .rejected
            .lock()
            .unwrap()
            .push(format!("no valid credentials for {key:?}"));
        return StatusCode::FORBIDDEN.into_response();
    }
    verifier.verified.fetch_add(1, Ordering::SeqCst);
    verifier.keys.lock().unwrap().push(key);
    next.run(request).await
}
