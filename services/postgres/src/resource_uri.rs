//! The URIs of the table schema resources: `postgres://{schema}/{table}/schema`,
//! with names percent-encoded, written by the catalog and read back by the
//! resources.

const PREFIX: &str = "postgres://";
const SUFFIX: &str = "/schema";

/// The resource URI of a table's schema, e.g. `postgres://public/employees/schema`.
/// Characters other than letters, digits, `_`, `-` and `.` are percent-encoded.
pub fn schema_uri(schema: &str, table: &str) -> String {
    format!("{PREFIX}{}/{}{SUFFIX}", encode(schema), encode(table))
}

/// The schema and table a resource URI names, or `None` when it is not a
/// schema resource URI.
pub fn parse_schema_uri(uri: &str) -> Option<(String, String)> {
    let path = uri.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (schema, table) = path.split_once('/')?;
    if schema.is_empty() || table.is_empty() || table.contains('/') {
        return None;
    }
    Some((decode(schema)?, decode(table)?))
}

fn encode(name: &str) -> String {
    name.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        assert_eq!(
            schema_uri("public", "employees"),
            "postgres://public/employees/schema"
        );
        assert_eq!(
            parse_schema_uri("postgres://public/employees/schema"),
            Some(("public".into(), "employees".into()))
        );
        let odd = schema_uri("My Schema", "a/b%");
        assert_eq!(odd, "postgres://My%20Schema/a%2Fb%25/schema");
        assert_eq!(
            parse_schema_uri(&odd),
            Some(("My Schema".into(), "a/b%".into()))
        );
        for bad in [
            "postgres://public/schema",
            "postgres://public/employees",
            "file:///etc/passwd",
            "postgres://a/b/c/schema",
            "postgres://a/%zz/schema",
        ] {
            assert_eq!(parse_schema_uri(bad), None, "{bad}");
        }
    }
}
