//! OAuth 2.0 Protected Resource Metadata (RFC 9728), so that MCP clients
//! discover where to log in (MCP 2025-06-18, Authorization §2.3).
//!
//! Served when an authorization server is known (`JWT_ISSUER` or
//! `OAUTH_AUTHORIZATION_SERVERS`), without authentication, at
//! `/.well-known/oauth-protected-resource` and, for the resource `/mcp`, at
//! `/.well-known/oauth-protected-resource/mcp` (RFC 9728 §3.1 inserts the
//! well-known path between host and resource path):
//!
//! ```json
//! {
//!   "resource": "https://mcp.example.com/mcp",
//!   "authorization_servers": ["https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf"],
//!   "bearer_methods_supported": ["header"],
//!   "resource_name": "calculator"
//! }
//! ```
//!
//! The resource URL is `OAUTH_RESOURCE_URL`, or else built from the request:
//! `X-Forwarded-Proto` (only behind trusted proxies, `TRUSTED_PROXY_HOPS`),
//! `Host`, and the resource path.

use http::{HeaderMap, header::HOST};

/// The well-known path of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the protected resource metadata comes from.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    /// `OAUTH_RESOURCE_URL`: the MCP endpoint's public URL, when configured.
    pub resource_url: Option<String>,
    /// Authorization servers to advertise (issuer URLs).
    pub authorization_servers: Vec<String>,
    /// `resource_name`: the service.
    pub resource_name: String,
    /// Whether `X-Forwarded-Proto` may be believed.
    pub behind_proxy: bool,
}

/// Splits `https://host[:port]/path` into origin and path (`/` when none).
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |index| index + 3);
    match url[after_scheme..].find('/') {
        Some(index) => url.split_at(after_scheme + index),
        None => (url, "/"),
    }
}

impl ResourceMetadata {
    /// The origin (`https://host`) requests reach this service at.
    fn origin(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.resource_url {
            return split_url(url).0.to_owned();
        }
        let scheme = self
            .behind_proxy
            .then(|| headers.get("x-forwarded-proto"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(str::trim)
            .filter(|proto| matches!(*proto, "http" | "https"))
            .unwrap_or("http");
        let host = headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
            })
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }

    /// The resource identifier (RFC 9728 §1.2) of the MCP endpoint.
    pub fn resource(&self, headers: &HeaderMap) -> String {
        match &self.resource_url {
            Some(url) => url.clone(),
            None => format!("{}/mcp", self.origin(headers)),
        }
    }

    /// The metadata URL of the resource, for `WWW-Authenticate`
    /// `resource_metadata` (RFC 9728 §5.1).
    pub fn url(&self, headers: &HeaderMap) -> String {
        let resource = self.resource(headers);
        let (origin, path) = split_url(&resource);
        let path = if path == "/" { "" } else { path };
        format!("{origin}{WELL_KNOWN}{path}")
    }

    /// The metadata document served at `WELL_KNOWN` + `suffix`.
    pub fn document(&self, headers: &HeaderMap, suffix: &str) -> serde_json::Value {
        let resource = if suffix.is_empty() || suffix == "/" {
            self.resource(headers)
        } else {
            format!("{}{suffix}", self.origin(headers))
        };
        serde_json::json!({
            "resource": resource,
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
            "resource_name": self.resource_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(resource_url: Option<&str>) -> ResourceMetadata {
        ResourceMetadata {
            resource_url: resource_url.map(str::to_owned),
            authorization_servers: vec!["https://idp.example.com".into()],
            resource_name: "calculator".into(),
            behind_proxy: true,
        }
    }

    #[test]
    fn the_metadata_url_inserts_the_well_known_path() {
        let headers = HeaderMap::new();
        let configured = metadata(Some("https://mcp.example.com/mcp"));
        assert_eq!(
            configured.url(&headers),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            configured.document(&headers, "/mcp")["resource"],
            "https://mcp.example.com/mcp"
        );
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "calc.example.com".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let derived = metadata(None);
        assert_eq!(
            derived.url(&headers),
            "https://calc.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            derived.document(&headers, "")["resource"],
            "https://calc.example.com/mcp"
        );
        // A Host that is no host name is not echoed.
        headers.insert(HOST, "evil\"host".parse().unwrap());
        assert!(derived.url(&headers).starts_with("https://localhost/"));
    }
}
