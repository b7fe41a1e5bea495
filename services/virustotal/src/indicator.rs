//! Indicators: what the tools look up, validated and normalised before any
//! API call, so that bad input costs no quota and gets a clear error.
//!
//! Each kind maps to one API v3 object path (docs.virustotal.com, API v3
//! reference: "Files", "URLs", "Domains", "IP addresses", "Analyses") and to
//! one cache key.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// The kind of object looked up; its name is the cache key's `<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A file, by hash.
    File,
    /// A URL.
    Url,
    /// A domain name.
    Domain,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// An analysis (the result of a submission).
    Analysis,
}

impl Kind {
    /// The name used in cache keys and results: `file`, `url`, `domain`,
    /// `ip_address`, `analysis`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Url => "url",
            Self::Domain => "domain",
            Self::IpAddress => "ip_address",
            Self::Analysis => "analysis",
        }
    }

    /// The API v3 collection: `files`, `urls`, `domains`, `ip_addresses`,
    /// `analyses`.
    pub fn collection(self) -> &'static str {
        match self {
            Self::File => "files",
            Self::Url => "urls",
            Self::Domain => "domains",
            Self::IpAddress => "ip_addresses",
            Self::Analysis => "analyses",
        }
    }
}

/// A validated indicator: its kind and the API identifier of its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    /// What it is.
    pub kind: Kind,
    /// The identifier in the API path `/{collection}/{id}`, normalised
    /// (lower-case hashes, domains and IPv6 addresses).
    pub id: String,
}

/// An input that is not a valid indicator; the message says what is
/// expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidIndicator(pub String);

/// Which hash a file identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// 32 hex digits.
    Md5,
    /// 40 hex digits.
    Sha1,
    /// 64 hex digits.
    Sha256,
}

/// A file hash: MD5, SHA-1 or SHA-256 in hex (any case, surrounding blanks
/// ignored), as `GET /files/{id}` accepts. Anything else is refused.
///
/// # Errors
/// [`InvalidIndicator`] saying which lengths are accepted.
pub fn file_hash(input: &str) -> Result<(Indicator, HashKind), InvalidIndicator> {
    let hash = input.trim();
    let hex = !hash.is_empty() && hash.bytes().all(|byte| byte.is_ascii_hexdigit());
    let kind = match hash.len() {
        32 if hex => HashKind::Md5,
        40 if hex => HashKind::Sha1,
        64 if hex => HashKind::Sha256,
        _ => {
            return Err(InvalidIndicator(format!(
                "`{}` is not a file hash: give an MD5 (32 hex digits), SHA-1 (40) or SHA-256 \
                 (64), e.g. 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                shown(hash)
            )));
        }
    };
    Ok((
        Indicator {
            kind: Kind::File,
            id: hash.to_ascii_lowercase(),
        },
        kind,
    ))
}

/// Longest URL accepted, in bytes (browsers and VirusTotal handle far less
/// in practice).
pub const MAX_URL_BYTES: usize = 8192;

/// A URL to look up or scan: absolute, `http`, `https` or `ftp`, with a
/// host. Its API identifier is the unpadded base64url of the URL as given
/// (docs.virustotal.com, "URLs": "the string resulting from encoding the URL
/// in base64 (without the `=` padding)", RFC 4648 §5 alphabet); VirusTotal
/// canonicalises it server-side.
///
/// # Errors
/// [`InvalidIndicator`] for relative URLs, other schemes, blanks or control
/// characters inside, and URLs over [`MAX_URL_BYTES`].
pub fn url(input: &str) -> Result<(Indicator, String), InvalidIndicator> {
    let text = input.trim();
    if text.is_empty() {
        return Err(InvalidIndicator(
            "the URL is empty: give an absolute URL such as https://example.com/path".into(),
        ));
    }
    if text.len() > MAX_URL_BYTES {
        return Err(InvalidIndicator(format!(
            "the URL is {} bytes long; at most {MAX_URL_BYTES} are accepted",
            text.len()
        )));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidIndicator(format!(
            "`{}` holds spaces or control characters: percent-encode them (%20)",
            shown(text)
        )));
    }
    let parsed = url::Url::parse(text).map_err(|error| {
        InvalidIndicator(format!(
            "`{}` is not an absolute URL ({error}): give one with its scheme, such as \
             https://example.com/path",
            shown(text)
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https" | "ftp") || parsed.host_str().is_none() {
        return Err(InvalidIndicator(format!(
            "`{}` is not a web URL: VirusTotal scans http://, https:// and ftp:// URLs with a host",
            shown(text)
        )));
    }
    Ok((
        Indicator {
            kind: Kind::Url,
            id: url_id(text),
        },
        text.to_owned(),
    ))
}

/// The API v3 identifier of `url`: unpadded base64url (RFC 4648 §5) of its
/// bytes.
pub fn url_id(url: &str) -> String {
    URL_SAFE_NO_PAD.encode(url.as_bytes())
}

/// A domain name: internationalised names are converted to their ASCII
/// (punycode) form; lower-cased, a trailing dot dropped. URLs, addresses
/// and names with a port or path are refused with advice on the right tool.
///
/// # Errors
/// [`InvalidIndicator`] saying what is wrong.
pub fn domain(input: &str) -> Result<Indicator, InvalidIndicator> {
    let text = input.trim();
    if text.contains("://") || text.contains('/') {
        return Err(InvalidIndicator(format!(
            "`{}` is a URL, not a domain: give the host name only (example.com), or use \
             get_url_report for the URL",
            shown(text)
        )));
    }
    if text.parse::<IpAddr>().is_ok() {
        return Err(InvalidIndicator(format!(
            "`{}` is an IP address: use get_ip_report",
            shown(text)
        )));
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    let invalid = |why: &str| {
        InvalidIndicator(format!(
            "`{}` is not a domain name: {why}; give one such as example.com",
            shown(text)
        ))
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    // UTS #46 mapping (lower case, punycode) without its strict STD3 rules,
    // which refuse real names such as `r3---sn-abc.example.com`; the label
    // rules below are checked here instead.
    let ascii = idna::domain_to_ascii(name)
        .map_err(|_| invalid("it has characters a host name cannot hold"))?;
    if ascii.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("it has no dot (a bare host name)"));
    }
    for label in &labels {
        let fine = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !fine {
            return Err(invalid(
                "each dot-separated label must be 1 to 63 letters, digits, underscores or inner hyphens",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(invalid("its last label is all digits"));
    }
    Ok(Indicator {
        kind: Kind::Domain,
        id: ascii.to_ascii_lowercase(),
    })
}

/// An IPv4 or IPv6 address, written in its canonical form (IPv6 compressed
/// and lower-case, RFC 5952). CIDR ranges, ports and zone ids are refused.
///
/// # Errors
/// [`InvalidIndicator`] saying what is expected.
pub fn ip_address(input: &str) -> Result<Indicator, InvalidIndicator> {
    let text = input.trim();
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    let address: IpAddr = unbracketed.parse().map_err(|_| {
        let hint = if text.contains('/') {
            "a CIDR range is not an address: give one address"
        } else if text.contains('%') {
            "zone ids (%eth0) are not part of an address"
        } else if text.matches(':').count() == 1 {
            "drop the port"
        } else {
            "expected IPv4 (203.0.113.7) or IPv6 (2001:db8::1)"
        };
        InvalidIndicator(format!("`{}` is not an IP address: {hint}", shown(text)))
    })?;
    Ok(Indicator {
        kind: Kind::IpAddress,
        id: address.to_string(),
    })
}

/// Longest analysis identifier accepted.
const MAX_ANALYSIS_ID_BYTES: usize = 256;

/// An analysis identifier as `POST /urls` or `POST /files` return it
/// (`u-<sha256>-<unix time>` for URLs, standard base64 for files).
///
/// # Errors
/// [`InvalidIndicator`] for empty, overlong or non-identifier text.
pub fn analysis_id(input: &str) -> Result<Indicator, InvalidIndicator> {
    let text = input.trim();
    let fine = !text.is_empty()
        && text.len() <= MAX_ANALYSIS_ID_BYTES
        && text.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'=' | b'+' | b'/')
        });
    if !fine {
        return Err(InvalidIndicator(format!(
            "`{}` is not an analysis id: give the `analysis_id` that scan_url returned, such as \
             u-dd014af5ed6b38d9130e3f466f850e46d21b951199d53a18ef29ee9341614eaf-1700000000",
            shown(text)
        )));
    }
    Ok(Indicator {
        kind: Kind::Analysis,
        id: text.to_owned(),
    })
}

/// At most 100 characters of `text`, for messages.
fn shown(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hashes_of_the_three_lengths() {
        for (hash, kind) in [
            ("44D88612FEA8A8F36DE82E1278ABB02F", HashKind::Md5),
            ("3395856ce81f2b7382dee72602f798b642f14140", HashKind::Sha1),
            (
                " 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f\n",
                HashKind::Sha256,
            ),
        ] {
            let (indicator, found) = file_hash(hash).unwrap();
            assert_eq!(found, kind);
            assert_eq!(indicator.id, hash.trim().to_ascii_lowercase());
            assert_eq!(indicator.kind, Kind::File);
        }
    }

    #[test]
    fn anything_else_is_not_a_hash() {
        for input in [
            "",
            "   ",
            "44d88612fea8a8f36de82e1278abb02",   // 31
            "44d88612fea8a8f36de82e1278abb02fa", // 33
            "g4d88612fea8a8f36de82e1278abb02f",  // not hex
            "44d88612-fea8-a8f3-6de8-2e1278abb02f",
            "../../etc/passwd",
            "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f?x=1",
            "२७५a021bbfb6489e54d471899f7db9d1", // non-ASCII digits
        ] {
            let error = file_hash(input).unwrap_err();
            assert!(error.0.contains("MD5"), "{input}: {error}");
        }
    }

    #[test]
    fn url_ids_are_unpadded_base64url() {
        // docs.virustotal.com's own example URL.
        let (indicator, url) = url("http://www.somedomain.com/this/is/my/url").unwrap();
        assert_eq!(url, "http://www.somedomain.com/this/is/my/url");
        assert_eq!(
            indicator.id,
            "aHR0cDovL3d3dy5zb21lZG9tYWluLmNvbS90aGlzL2lzL215L3VybA"
        );
        // Bytes that standard base64 would write as `+`, `/` and padding.
        let id = url_id("https://example.com/?q=>>>???");
        assert!(
            !id.contains('=') && !id.contains('+') && !id.contains('/'),
            "{id}"
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&id).unwrap(),
            b"https://example.com/?q=>>>???"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for input in [
            "",
            "example.com/path",
            "/relative",
            "javascript:alert(1)",
            "mailto:someone@example.com",
            "file:///etc/passwd",
            "http://exa mple.com/",
            "http://example.com/\u{0}",
        ] {
            assert!(url(input).is_err(), "{input:?} should be refused");
        }
        assert!(
            url(&format!(
                "https://example.com/{}",
                "a".repeat(MAX_URL_BYTES)
            ))
            .is_err()
        );
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(domain("Example.COM.").unwrap().id, "example.com");
        assert_eq!(
            domain(" sub.example.co.uk ").unwrap().id,
            "sub.example.co.uk"
        );
        assert_eq!(
            domain("bücher.example").unwrap().id,
            "xn--bcher-kva.example"
        );
        assert_eq!(
            domain("xn--bcher-kva.example").unwrap().id,
            "xn--bcher-kva.example"
        );
        assert_eq!(
            domain("r3---sn-ab5l6n7s.example.com").unwrap().id,
            "r3---sn-ab5l6n7s.example.com"
        );
        assert_eq!(
            domain("_dmarc.example.com").unwrap().id,
            "_dmarc.example.com"
        );
    }

    #[test]
    fn non_domains_are_refused_with_advice() {
        for (input, advice) in [
            ("https://example.com/", "get_url_report"),
            ("example.com/path", "get_url_report"),
            ("8.8.8.8", "get_ip_report"),
            ("2001:db8::1", "get_ip_report"),
            ("localhost", "no dot"),
            ("", "empty"),
            ("exa mple.com", "domain name"),
            ("exa*mple.com", "domain name"),
            ("-bad.example.com", "domain name"),
            ("a..b.com", "domain name"),
            ("example.123", "all digits"),
            ("example.com:443", "domain name"),
        ] {
            let error = domain(input).unwrap_err();
            assert!(error.0.contains(advice), "{input}: {error}");
        }
        assert!(domain(&format!("{}.com", "a".repeat(64))).is_err());
        let long = vec!["abcdefghij"; 24].join(".") + ".com";
        assert!(domain(&long).is_err());
    }

    #[test]
    fn ip_addresses_of_both_families() {
        assert_eq!(ip_address(" 8.8.8.8 ").unwrap().id, "8.8.8.8");
        assert_eq!(
            ip_address("2001:0DB8:0000:0000:0000:0000:0000:0001")
                .unwrap()
                .id,
            "2001:db8::1"
        );
        assert_eq!(
            ip_address("[2606:4700:4700::1111]").unwrap().id,
            "2606:4700:4700::1111"
        );
        assert_eq!(
            ip_address("::ffff:192.0.2.1").unwrap().id,
            "::ffff:192.0.2.1"
        );
    }

    #[test]
    fn non_addresses_are_refused_with_advice() {
        for (input, advice) in [
            ("8.8.8.8/24", "CIDR"),
            ("fe80::1%eth0", "zone"),
            ("8.8.8.8:53", "port"),
            ("256.1.1.1", "IPv4"),
            ("1.2.3", "IPv4"),
            ("example.com", "IPv4"),
            ("", "IPv4"),
            ("08.8.8.8", "IPv4"),
        ] {
            let error = ip_address(input).unwrap_err();
            assert!(error.0.contains(advice), "{input}: {error}");
        }
    }

    #[test]
    fn analysis_ids() {
        assert!(
            analysis_id(
                "u-dd014af5ed6b38d9130e3f466f850e46d21b951199d53a18ef29ee9341614eaf-1700000000"
            )
            .is_ok()
        );
        assert!(
            analysis_id("NjY0MjRlOTFjMDIyYTkyNWM0NjU2NWQzYWNlMzFmZmI6MTYyMzk0MDYwOA==").is_ok()
        );
        for input in ["", "a b", "../x?y", "x#y", &"a".repeat(300)] {
            assert!(analysis_id(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn messages_cut_long_input() {
        let error = file_hash(&"z".repeat(5000)).unwrap_err();
        assert!(error.0.len() < 400, "{}", error.0.len());
    }
}
