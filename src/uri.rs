//! Resource URIs, a leaf every floor may read (configuration, discovery,
//! the role check, the pipeline):
//! - [`normalize`]: the form they are matched in against the catalog's
//!   resource sets (RFC 3986, section 6.2.2), so `research://notes/../restricted`
//!   or `%2e%2e` cannot walk out of a set by spelling; the upstream receives
//!   the normalized URI, the one that was authorized;
//! - [`reveals_address`]: whether a URI would tell an agent where something
//!   lives.

/// URI schemes that name a network or file location.
const ADDRESS_SCHEMES: &[&str] = &[
    "http", "https", "ws", "wss", "file", "ftp", "sftp", "ssh", "tcp", "udp", "unix", "smb", "nfs",
];

/// Whether `uri` would tell an agent where something lives: an address
/// scheme, or an authority with a port, user info or an IP address.
pub fn reveals_address(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    if ADDRESS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return true;
    }
    let Some(after) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    authority.contains('@')
        || host.parse::<std::net::IpAddr>().is_ok()
        || authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("the resource URI has no scheme")]
    NoScheme,
    #[error("the resource URI has a malformed percent-escape")]
    BadEscape,
    #[error("the resource URI contains a control character or a backslash")]
    BadCharacter,
    #[error("the resource URI contains an encoded slash, backslash or NUL")]
    AmbiguousSegment,
}

/// The normal form of `uri`: scheme and host in lower case, escapes of
/// unreserved characters decoded (others in upper-case hex), dot segments
/// removed. URIs that would still mean different things to different
/// servers (an encoded `/`, `\` or NUL inside a segment, raw control
/// characters or backslashes) are refused.
pub fn normalize(uri: &str) -> Result<String, UriError> {
    if uri.chars().any(|c| c.is_control() || c == '\\') {
        return Err(UriError::BadCharacter);
    }
    let (scheme, rest) = uri.split_once(':').ok_or(UriError::NoScheme)?;
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(UriError::NoScheme);
    }
    let rest = decode_unreserved(rest)?;
    // The fragment, then the query, are kept as they are (normalized escapes).
    let (rest, fragment) = split_keep(&rest, '#');
    let (rest, query) = split_keep(rest, '?');
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(lower_host(&after[..end])), &after[end..])
        }
        None => (None, rest),
    };
    let is_dot = |segment: &str| segment == "." || segment == "..";
    if !path.starts_with('/') && path.split('/').any(is_dot) {
        // A rootless path (`urn:a/../b`) has no root to resolve dots against.
        return Err(UriError::AmbiguousSegment);
    }
    let path = remove_dot_segments(path);
    if authority.is_none() && path.starts_with("//") {
        // `x:/.//a` would become `x://a`, whose `a` reads as a host.
        return Err(UriError::AmbiguousSegment);
    }
    let lower = path.to_ascii_uppercase();
    if ["%2F", "%5C", "%00"].iter().any(|bad| lower.contains(bad)) {
        return Err(UriError::AmbiguousSegment);
    }
    let mut normal = scheme.to_ascii_lowercase();
    normal.push(':');
    if let Some(authority) = authority {
        normal.push_str("//");
        normal.push_str(&authority);
    }
    normal.push_str(&path);
    normal.push_str(query);
    normal.push_str(fragment);
    Ok(normal)
}

/// `text` split before the first `separator`; the second part keeps it.
fn split_keep(text: &str, separator: char) -> (&str, &str) {
    text.find(separator)
        .map_or((text, ""), |at| text.split_at(at))
}

/// Decode `%XX` escapes of unreserved characters; upper-case the others.
fn decode_unreserved(text: &str) -> Result<String, UriError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let next = text[i..].chars().next().unwrap_or_default();
            out.push(next);
            i += next.len_utf8();
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(UriError::BadEscape)?;
        let hex = std::str::from_utf8(hex).map_err(|_| UriError::BadEscape)?;
        let value = u8::from_str_radix(hex, 16).map_err(|_| UriError::BadEscape)?;
        if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        i += 3;
    }
    Ok(out)
}

/// The authority with its host in lower case (user info is kept as is).
fn lower_host(authority: &str) -> String {
    match authority.rsplit_once('@') {
        Some((user, host)) => format!("{user}@{}", host.to_ascii_lowercase()),
        None => authority.to_ascii_lowercase(),
    }
}

/// RFC 3986, section 5.2.4, for an empty or absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    // The first piece of an absolute path is the empty string before `/`.
    let start = usize::from(absolute);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate().skip(start) {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                output.pop();
                trailing_slash = i == last;
            }
            other => {
                output.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(path.len());
    if absolute {
        normal.push('/');
    }
    normal.push_str(&output.join("/"));
    if trailing_slash && !normal.ends_with('/') {
        normal.push('/');
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_escapes_are_normalized() {
        let cases = [
            (
                "research://notes/../restricted/limits",
                "research://notes/restricted/limits",
            ),
            (
                "research://notes/a/%2e%2e/%2E%2E/restricted",
                "research://notes/restricted",
            ),
            ("research://notes/./../x", "research://notes/x"),
            ("research://notes/a/b/..", "research://notes/a/"),
            ("research://notes/a/./", "research://notes/a/"),
            ("RESEARCH://Notes/Q3", "research://notes/Q3"),
            ("research://notes/%7euser%2d1", "research://notes/~user-1"),
            ("research://notes/a%3ab", "research://notes/a%3Ab"),
            ("research://notes/x?q=../y#f", "research://notes/x?q=../y#f"),
            ("urn:example:a.b", "urn:example:a.b"),
            ("research://notes/", "research://notes/"),
        ];
        for (uri, normal) in cases {
            assert_eq!(normalize(uri).as_deref(), Ok(normal), "{uri}");
        }
    }

    #[test]
    fn ambiguous_uris_are_refused() {
        let cases = [
            (
                "research://notes/..%2frestricted",
                UriError::AmbiguousSegment,
            ),
            ("research://notes/a%5c..", UriError::AmbiguousSegment),
            ("research://notes/a%00", UriError::AmbiguousSegment),
            ("research://notes/a\\..\\b", UriError::BadCharacter),
            ("research://notes/a\nb", UriError::BadCharacter),
            ("research://notes/%zz", UriError::BadEscape),
            ("research://notes/%2", UriError::BadEscape),
            ("urn:example:a/../b", UriError::AmbiguousSegment),
            // Found by the fuzzer: dots that would turn a path into a host.
            ("z..ra:/.//....:.Q.", UriError::AmbiguousSegment),
            ("ser:/..//L.=s", UriError::AmbiguousSegment),
            ("notes/limits", UriError::NoScheme),
            ("1x://notes", UriError::NoScheme),
        ];
        for (uri, error) in cases {
            assert_eq!(normalize(uri), Err(error), "{uri}");
        }
    }

    #[test]
    fn a_normal_uri_is_its_own_normal_form() {
        for uri in [
            "research://notes/a/../b/%2e/c",
            "RESEARCH://NOTES/./x/%41",
            "research://notes/x/..",
        ] {
            let once = normalize(uri).unwrap();
            assert_eq!(normalize(&once).unwrap(), once, "{uri}");
        }
    }

    #[test]
    fn address_revealing_uris_are_recognised() {
        for uri in [
            "http://10.0.0.5/x",
            "HTTPS://internal.example/x",
            "file:///etc/passwd",
            "db://10.0.0.5/positions",
            "notes://svc.internal:8443/x",
            "notes://user@host/x",
            "notes://[::1]/x",
        ] {
            assert!(reveals_address(uri), "{uri}");
        }
        for uri in [
            "research://notes/daily",
            "urn:isbn:123",
            "memo://desk/equities",
            "positions",
        ] {
            assert!(!reveals_address(uri), "{uri}");
        }
    }
}
