//! The service's resources (MCP 2025-06-18, Server Features §Resources):
//! three direct resources and one resource template.
//!
//! | URI | content |
//! |---|---|
//! | `test://static-text` | fixed `text/plain` text |
//! | `test://static-binary` | a 1×1 PNG as a base64 `blob` |
//! | `test://watched-resource` | text that changes every [`WATCH_INTERVAL`]; subscribe to be told (see [`subscriptions`](crate::subscriptions)) |
//! | `test://template/{id}/data` | template: JSON naming the `{id}` of the URI read |
//!
//! Everything here is a pure function of the URI (and, for the watched
//! resource, of the clock), so every replica of the service reads the same
//! contents.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::json;

use crate::media;

/// A fixed text resource.
pub const STATIC_TEXT_URI: &str = "test://static-text";
/// A fixed binary resource: a PNG image.
pub const STATIC_BINARY_URI: &str = "test://static-binary";
/// A text resource that changes every [`WATCH_INTERVAL`].
pub const WATCHED_URI: &str = "test://watched-resource";
/// The resource template (RFC 6570 level 1); see [`template_id`].
pub const TEMPLATE_URI: &str = "test://template/{id}/data";

/// The text of [`STATIC_TEXT_URI`].
pub const STATIC_TEXT: &str = "This is the content of the static text resource.";

/// How often [`WATCHED_URI`] changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(3);

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

/// The direct resources, for `resources/list`.
pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_title("Static Text Resource")
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_title("Static Binary Resource")
            .with_description("A static binary resource: a 1x1 red PNG image")
            .with_mime_type(media::PNG_MIME_TYPE),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_title("Watched Resource")
            .with_description(
                "A text resource that changes every 3 seconds; subscribe to be notified",
            )
            .with_mime_type("text/plain"),
    ]
}

/// The resource templates, for `resources/templates/list`.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TEMPLATE_URI, "template")
            .with_title("Resource Template")
            .with_description("Data for any id: test://template/{id}/data")
            .with_mime_type("application/json"),
    ]
}

/// The `{id}` of a URI of [`TEMPLATE_URI`]'s form: one non-empty path segment.
pub fn template_id(uri: &str) -> Option<&str> {
    uri.strip_prefix(TEMPLATE_PREFIX)?
        .strip_suffix(TEMPLATE_SUFFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Whether `uri` names a resource of this service (direct or templated).
pub fn exists(uri: &str) -> bool {
    matches!(uri, STATIC_TEXT_URI | STATIC_BINARY_URI | WATCHED_URI) || template_id(uri).is_some()
}

/// The contents of `uri`, for `resources/read`.
///
/// # Errors
/// The MCP resource-not-found error (`-32002`) for a URI of no resource.
pub fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = match uri {
        STATIC_TEXT_URI => ResourceContents::text(STATIC_TEXT, uri),
        STATIC_BINARY_URI => ResourceContents::blob(media::red_pixel_png_base64(), uri)
            .with_mime_type(media::PNG_MIME_TYPE),
        WATCHED_URI => ResourceContents::text(watched_text(SystemTime::now()), uri),
        _ => {
            let Some(id) = template_id(uri) else {
                return Err(ErrorData::resource_not_found(
                    format!(
                        "no resource at `{uri}`: call resources/list and resources/templates/list"
                    ),
                    Some(json!({ "uri": uri })),
                ));
            };
            let data =
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            ResourceContents::text(data.to_string(), uri).with_mime_type("application/json")
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The revision of [`WATCHED_URI`] at `now`: the number of whole
/// [`WATCH_INTERVAL`]s since the Unix epoch, the same on every replica.
pub fn watched_revision(now: SystemTime) -> u64 {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs() / WATCH_INTERVAL.as_secs()
}

/// The time from `now` until [`WATCHED_URI`] next changes.
pub fn until_next_revision(now: SystemTime) -> Duration {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let interval = WATCH_INTERVAL.as_millis();
    let elapsed = since_epoch.as_millis() % interval;
    Duration::from_millis(u64::try_from(interval - elapsed).unwrap_or(1))
}

/// The text of [`WATCHED_URI`] at `now`.
pub fn watched_text(now: SystemTime) -> String {
    format!(
        "Watched resource content, revision {}",
        watched_revision(now)
    )
}

#[cfg(test)]
mod tests {
    use rmcp::model::ErrorCode;

    use super::*;

    fn only(result: ReadResourceResult) -> serde_json::Value {
        assert_eq!(result.contents.len(), 1);
        serde_json::to_value(&result.contents[0]).unwrap()
    }

    #[test]
    fn static_resources_read_back() {
        let text = only(read(STATIC_TEXT_URI).unwrap());
        assert_eq!(text["uri"], STATIC_TEXT_URI);
        assert_eq!(text["mimeType"], "text/plain");
        assert_eq!(text["text"], STATIC_TEXT);

        let binary = only(read(STATIC_BINARY_URI).unwrap());
        assert_eq!(binary["mimeType"], "image/png");
        assert_eq!(binary["blob"], media::red_pixel_png_base64());
    }

    #[test]
    fn template_substitutes_the_id() {
        assert_eq!(template_id("test://template/123/data"), Some("123"));
        assert_eq!(template_id("test://template//data"), None);
        assert_eq!(template_id("test://template/1/2/data"), None);
        assert_eq!(template_id("test://template/123"), None);
        let content = only(read("test://template/123/data").unwrap());
        assert_eq!(content["uri"], "test://template/123/data");
        assert_eq!(content["mimeType"], "application/json");
        let data: serde_json::Value =
            serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"id": "123", "templateTest": true, "data": "Data for ID: 123"})
        );
    }

    #[test]
    fn unknown_uris_are_not_found() {
        let error = read("test://nothing").unwrap_err();
        assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND);
        assert!(!exists("test://nothing"));
        assert!(exists(WATCHED_URI));
        assert!(exists("test://template/abc/data"));
    }

    #[test]
    fn every_listed_resource_reads() {
        for resource in list() {
            assert!(exists(&resource.uri));
            read(&resource.uri).unwrap();
        }
    }

    #[test]
    fn watched_resource_changes_each_interval() {
        let t0 = UNIX_EPOCH + Duration::from_millis(30_500);
        assert_eq!(watched_revision(t0), 10);
        assert_eq!(until_next_revision(t0), Duration::from_millis(2_500));
        let t1 = t0 + until_next_revision(t0);
        assert_eq!(watched_revision(t1), 11);
        assert_ne!(watched_text(t0), watched_text(t1));
    }
}
