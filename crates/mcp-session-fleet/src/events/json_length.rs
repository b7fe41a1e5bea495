//! The length a value would have as JSON, counted by walking it with serde
//! without writing anything.
//!
//! The [`EventBuffer`](super::buffer::EventBuffer) keeps each event as the
//! message rmcp sent (shared with the response being written, so keeping it
//! copies nothing) and encodes it only if it goes to Redis, which few do.
//! Its byte budget still needs each event's weight: this is it, the length
//! of the message's JSON, at a fraction of the cost of encoding it (about a
//! tenth of a tool call's instructions went to encoding every answer a
//! second time for the buffer; docs/benchmarks.md).
//!
//! The count is `serde_json`'s compact encoding exactly, except that
//! escapes are not counted: a string holding quotes, backslashes or control
//! characters counts one byte per such character (or a few) short.

use std::fmt::{self, Display, Write as _};

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// The length in bytes of `value` as compact JSON (`serde_json::to_string`),
/// escapes not counted (see the module docs). A value whose `Serialize`
/// fails counts what was walked before it failed.
pub(crate) fn json_length<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = Counter(0);
    // Counting itself never fails.
    let _ = value.serialize(&mut counter);
    counter.0
}

/// The running count.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0 += text.len();
        Ok(())
    }
}

impl Counter {
    /// Counts a float as `serde_json` writes it: its shortest form, by the
    /// same library (zmij); NaN and the infinities as `null`.
    fn float(&mut self, value: impl zmij::Float, finite: bool) {
        self.0 += if finite {
            zmij::Buffer::new().format_finite(value).len()
        } else {
            4
        };
    }

    /// Counts `value` as `Display` writes it (integers: the digits
    /// `serde_json` writes).
    fn display(&mut self, value: impl Display) {
        // Writing into a counter cannot fail.
        let _ = write!(self, "{value}");
    }

    /// `{"<variant>":` and its closing `}`: how `serde_json` wraps an enum
    /// variant that has content.
    fn variant(&mut self, variant: &str) {
        self.0 += variant.len() + 5;
    }
}

/// A sequence, map or struct being counted: its brackets, and the commas
/// between its elements.
struct Compound<'a> {
    counter: &'a mut Counter,
    elements: usize,
}

impl<'a> Compound<'a> {
    fn open(counter: &'a mut Counter) -> Self {
        counter.0 += 2;
        Self {
            counter,
            elements: 0,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        self.elements += 1;
        value.serialize(&mut *self.counter)
    }

    /// A member of an object: `"<key>":<value>`.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), fmt::Error> {
        self.elements += 1;
        self.counter.0 += key.len() + 3;
        value.serialize(&mut *self.counter)
    }

    fn close(self) -> Result<(), fmt::Error> {
        self.counter.0 += self.elements.saturating_sub(1);
        Ok(())
    }
}

impl<'a> Serializer for &'a mut Counter {
    type Ok = ();
    type Error = fmt::Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, value: bool) -> Result<(), fmt::Error> {
        self.0 += if value { 4 } else { 5 };
        Ok(())
    }

    fn serialize_i64(self, value: i64) -> Result<(), fmt::Error> {
        self.display(value);
        Ok(())
    }

    fn serialize_i128(self, value: i128) -> Result<(), fmt::Error> {
        self.display(value);
        Ok(())
    }

    fn serialize_u64(self, value: u64) -> Result<(), fmt::Error> {
        self.display(value);
        Ok(())
    }

    fn serialize_u128(self, value: u128) -> Result<(), fmt::Error> {
        self.display(value);
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), fmt::Error> {
        self.serialize_i64(value.into())
    }

    fn serialize_i16(self, value: i16) -> Result<(), fmt::Error> {
        self.serialize_i64(value.into())
    }

    fn serialize_i32(self, value: i32) -> Result<(), fmt::Error> {
        self.serialize_i64(value.into())
    }

    fn serialize_u8(self, value: u8) -> Result<(), fmt::Error> {
        self.serialize_u64(value.into())
    }

    fn serialize_u16(self, value: u16) -> Result<(), fmt::Error> {
        self.serialize_u64(value.into())
    }

    fn serialize_u32(self, value: u32) -> Result<(), fmt::Error> {
        self.serialize_u64(value.into())
    }

    fn serialize_f32(self, value: f32) -> Result<(), fmt::Error> {
        self.float(value, value.is_finite());
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), fmt::Error> {
        self.float(value, value.is_finite());
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), fmt::Error> {
        self.0 += value.len_utf8() + 2;
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), fmt::Error> {
        self.0 += value.len() + 2;
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), fmt::Error> {
        // An array of numbers.
        let mut array = Compound::open(self);
        for byte in value {
            array.element(byte)?;
        }
        array.close()
    }

    fn serialize_none(self) -> Result<(), fmt::Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), fmt::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), fmt::Error> {
        self.0 += 4;
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), fmt::Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), fmt::Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), fmt::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), fmt::Error> {
        self.variant(variant);
        value.serialize(self)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, fmt::Error> {
        Ok(Compound::open(self))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, fmt::Error> {
        Ok(Compound::open(self))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, fmt::Error> {
        Ok(Compound::open(self))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, fmt::Error> {
        self.variant(variant);
        Ok(Compound::open(self))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, fmt::Error> {
        Ok(Compound::open(self))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, fmt::Error> {
        Ok(Compound::open(self))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, fmt::Error> {
        self.variant(variant);
        Ok(Compound::open(self))
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), fmt::Error> {
        self.0 += 2;
        self.display(value);
        Ok(())
    }
}

impl SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), fmt::Error> {
        // The key, and the colon after it.
        self.counter.0 += 1;
        self.element(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), fmt::Error> {
        value.serialize(&mut *self.counter)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), fmt::Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

impl SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = fmt::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), fmt::Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), fmt::Error> {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{
        CallToolResult, ContentBlock, ErrorData, JsonRpcError, JsonRpcResponse, JsonRpcVersion2_0,
        NumberOrString, ServerJsonRpcMessage, ServerResult,
    };
    use serde_json::json;

    use super::*;

    fn assert_counts_as_serde_json<T: Serialize>(value: &T) {
        let json = serde_json::to_string(value).expect("encodes");
        assert_eq!(json_length(value), json.len(), "{json}");
    }

    #[test]
    fn counts_json_values_as_serde_json_writes_them() {
        for value in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12345),
            json!(u64::MAX),
            json!(1.5),
            json!(-0.001),
            json!(1e300),
            json!(1e-7),
            json!(""),
            json!("héllo"),
            json!([]),
            json!({}),
            json!([1, [2, [3, []]], {"a": {}}]),
            json!({"a": 1, "bb": [true, null, "x"], "c": {"d": {"e": 2.25}}}),
        ] {
            assert_counts_as_serde_json(&value);
        }
    }

    #[test]
    fn counts_rust_types_as_serde_json_writes_them() {
        #[derive(serde::Serialize)]
        enum Shape {
            Unit,
            Newtype(u8),
            Tuple(i32, String),
            Struct { side: f64, name: Option<String> },
        }
        #[derive(serde::Serialize)]
        struct Flattened {
            id: u32,
            #[serde(flatten)]
            rest: std::collections::BTreeMap<String, Shape>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
        }
        let rest = [
            ("u", Shape::Unit),
            ("n", Shape::Newtype(7)),
            ("t", Shape::Tuple(-3, "three".into())),
            (
                "s",
                Shape::Struct {
                    side: 2.5,
                    name: None,
                },
            ),
        ]
        .into_iter()
        .map(|(key, shape)| (key.to_owned(), shape))
        .collect();
        assert_counts_as_serde_json(&Flattened {
            id: 42,
            rest,
            skipped: None,
        });
        assert_counts_as_serde_json(&('x', 'é', (), [1u8, 200]));
        assert_counts_as_serde_json(&serde_bytes_like(&[0, 9, 10, 255]));
        assert_counts_as_serde_json(&f64::NAN);
        assert_counts_as_serde_json(&[0.1_f32, f32::INFINITY, 3e38]);
    }

    /// Bytes serialized with `serialize_bytes` (as `serde_bytes` does).
    fn serde_bytes_like(bytes: &[u8]) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }

    #[test]
    fn counts_mcp_messages_as_serde_json_writes_them() {
        let result = ServerJsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id: NumberOrString::Number(7),
            result: ServerResult::CallToolResult(CallToolResult::success(vec![
                ContentBlock::text("5"),
            ])),
        });
        assert_counts_as_serde_json(&result);
        let error = ServerJsonRpcMessage::Error(JsonRpcError {
            jsonrpc: JsonRpcVersion2_0,
            id: Some(NumberOrString::String("abc".into())),
            error: ErrorData::invalid_params("no such tool", Some(json!({"tool": "sub"}))),
        });
        assert_counts_as_serde_json(&error);
    }

    #[test]
    fn escapes_are_not_counted() {
        let text = json!("a \"quoted\" line\n");
        let encoded = serde_json::to_string(&text).expect("encodes");
        assert_eq!(json_length(&text), encoded.len() - 3);
    }
}
