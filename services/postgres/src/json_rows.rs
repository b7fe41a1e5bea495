//! Result rows to JSON, for any column type.
//!
//! tokio-postgres receives every value in PostgreSQL's binary format;
//! [`JsonCell`] decodes it by type:
//!
//! | PostgreSQL | JSON |
//! |---|---|
//! | `boolean` | `true` / `false` |
//! | `smallint`, `integer`, `bigint`, `oid` | number |
//! | `real`, `double precision` | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
//! | `numeric`, `money` | string with every digit (`"85000.00"`): JSON numbers would round |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, `xml`, enums | string |
//! | `json`, `jsonb` | the JSON value itself |
//! | `date` | `"2024-03-01"` (or `"infinity"`) |
//! | `timestamp` | `"2024-03-01T09:30:00"` |
//! | `timestamptz` | `"2024-03-01T09:30:00Z"` (UTC) |
//! | `time` | `"09:30:00"` |
//! | `interval` | ISO 8601 duration, `"P1Y2M3DT4H5M6S"` |
//! | `uuid` | `"6f1c…"` |
//! | `bytea` | `"\\x0102ff"` (hex, as PostgreSQL prints it) |
//! | `inet`, `cidr` | `"10.0.0.1/32"` |
//! | arrays | nested JSON arrays |
//! | composite values, `record` | object of the fields |
//! | SQL `NULL` | `null` |
//!
//! Any other type becomes a string placeholder naming the type and telling
//! the reader to cast the expression to text (`expr::text`).

use std::{error::Error, fmt::Write as _};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};
use tokio_postgres::{
    Row,
    types::{FromSql, Kind, Type},
};

type BoxError = Box<dyn Error + Sync + Send>;

/// One value of a result row, decoded to JSON. Accepts every type.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCell(pub Value);

impl<'a> FromSql<'a> for JsonCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(decode(ty, raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The values of `row`, in column order.
///
/// # Errors
/// The driver's error if a column cannot be read at all.
pub fn row_values(row: &Row) -> Result<Vec<Value>, tokio_postgres::Error> {
    (0..row.len())
        .map(|index| row.try_get::<_, JsonCell>(index).map(|cell| cell.0))
        .collect()
}

/// The size in bytes of a value as it came off the wire (0 for NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireSize(pub usize);

impl<'a> FromSql<'a> for WireSize {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(raw.len()))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self(0))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The total wire size of `row`'s values, known before decoding any of them.
///
/// # Errors
/// The driver's error if a column cannot be read at all.
pub fn row_wire_size(row: &Row) -> Result<usize, tokio_postgres::Error> {
    (0..row.len())
        .map(|index| row.try_get::<_, WireSize>(index).map(|size| size.0))
        .sum()
}

/// Decodes one non-NULL value; never fails: what cannot be decoded becomes
/// a placeholder string.
pub fn decode(ty: &Type, raw: &[u8]) -> Value {
    decode_checked(ty, raw).unwrap_or_else(|error| {
        Value::String(format!(
            "(undecodable {} value: {error}; cast it to text, e.g. expr::text)",
            ty.name()
        ))
    })
}

fn placeholder(ty: &Type) -> Value {
    Value::String(format!(
        "(value of type {}: cast it to text, e.g. expr::text, to read it)",
        ty.name()
    ))
}

fn decode_checked(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    match ty.kind() {
        Kind::Enum(_) => return Ok(Value::String(std::str::from_utf8(raw)?.to_owned())),
        Kind::Array(member) => return decode_array(member, raw),
        Kind::Domain(base) => return decode_checked(base, raw),
        Kind::Composite(fields) => {
            let types: Vec<(String, Type)> = fields
                .iter()
                .map(|field| (field.name().to_owned(), field.type_().clone()))
                .collect();
            return decode_composite(Some(&types), raw);
        }
        _ => {}
    }
    let value = match *ty {
        Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
        Type::INT2 => Value::from(i16::from_sql(ty, raw)?),
        Type::INT4 => Value::from(i32::from_sql(ty, raw)?),
        Type::INT8 => Value::from(i64::from_sql(ty, raw)?),
        Type::OID | Type::XID | Type::CID => Value::from(u32::from_sql(&Type::OID, raw)?),
        Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?), true),
        Type::FLOAT8 => float(f64::from_sql(ty, raw)?, false),
        Type::NUMERIC => Value::String(numeric_text(raw)?),
        Type::MONEY => Value::String(money_text(i64::from_sql(&Type::INT8, raw)?)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::XML => {
            Value::String(std::str::from_utf8(raw)?.to_owned())
        }
        Type::CHAR => Value::String(char::from(i8::from_sql(ty, raw)? as u8).to_string()),
        Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
        Type::DATE => Value::String(date_text(raw)?),
        Type::TIMESTAMP => Value::String(match infinity_i64(raw)? {
            Some(text) => text.to_owned(),
            None => NaiveDateTime::from_sql(ty, raw)?
                .format("%Y-%m-%dT%H:%M:%S%.f")
                .to_string(),
        }),
        Type::TIMESTAMPTZ => Value::String(match infinity_i64(raw)? {
            Some(text) => text.to_owned(),
            None => {
                DateTime::<Utc>::from_sql(ty, raw)?.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            }
        }),
        Type::TIME => Value::String(
            NaiveTime::from_sql(ty, raw)?
                .format("%H:%M:%S%.f")
                .to_string(),
        ),
        Type::INTERVAL => Value::String(interval_text(raw)?),
        Type::UUID => Value::String(uuid_text(raw)?),
        Type::BYTEA => {
            let mut text = String::with_capacity(2 + raw.len() * 2);
            text.push_str("\\x");
            for byte in raw {
                let _ = write!(text, "{byte:02x}");
            }
            Value::String(text)
        }
        Type::INET | Type::CIDR => Value::String(inet_text(raw)?),
        Type::RECORD => decode_composite(None, raw)?,
        _ if ty.name() == "citext" => Value::String(std::str::from_utf8(raw)?.to_owned()),
        _ => placeholder(ty),
    };
    Ok(value)
}

/// A float as a JSON number, or a string for values JSON cannot hold.
/// `single` floats are printed at their own precision (0.1, not 0.100000001).
fn float(value: f64, single: bool) -> Value {
    if value.is_nan() {
        return Value::String("NaN".into());
    }
    if value.is_infinite() {
        return Value::String(if value > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    let value = if single {
        (value as f32).to_string().parse().unwrap_or(value)
    } else {
        value
    };
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// Reads big-endian integers off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], BoxError> {
        if self.0.len() < len {
            return Err("value shorter than its type requires".into());
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BoxError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, BoxError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }

    fn u16(&mut self) -> Result<u16, BoxError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into()?))
    }

    fn i32(&mut self) -> Result<i32, BoxError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }

    fn u32(&mut self) -> Result<u32, BoxError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into()?))
    }

    fn i64(&mut self) -> Result<i64, BoxError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into()?))
    }

    /// A length-prefixed value: `None` for SQL NULL (length -1).
    fn value(&mut self) -> Result<Option<&'a [u8]>, BoxError> {
        match self.i32()? {
            -1 => Ok(None),
            len if len < 0 => Err("invalid value length".into()),
            len => Ok(Some(self.take(len as usize)?)),
        }
    }
}

/// The exact decimal text of a binary `numeric`: base-10000 digit groups,
/// a weight (exponent of the first group), a sign and a display scale.
pub fn numeric_text(raw: &[u8]) -> Result<String, BoxError> {
    let mut reader = Reader(raw);
    let ndigits = reader.i16()?;
    let weight = i32::from(reader.i16()?);
    let sign = reader.u16()?;
    let dscale = usize::from(reader.u16()?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err("invalid numeric sign".into()),
    }
    if ndigits < 0 {
        return Err("invalid numeric digit count".into());
    }
    let digits = (0..ndigits)
        .map(|_| match reader.i16()? {
            digit @ 0..=9999 => Ok(digit),
            _ => Err(BoxError::from("invalid numeric digit")),
        })
        .collect::<Result<Vec<i16>, BoxError>>()?;
    let digit = |index: i32| -> i16 {
        usize::try_from(index)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for index in 0..=weight {
            if index == 0 {
                let _ = write!(text, "{}", digit(index));
            } else {
                let _ = write!(text, "{:04}", digit(index));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut index = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(index));
            index += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// `money` is a count of cents (two fraction digits in the usual locales).
fn money_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// `infinity` / `-infinity` for the special 64-bit timestamp values.
fn infinity_i64(raw: &[u8]) -> Result<Option<&'static str>, BoxError> {
    Ok(match Reader(raw).i64()? {
        i64::MAX => Some("infinity"),
        i64::MIN => Some("-infinity"),
        _ => None,
    })
}

fn date_text(raw: &[u8]) -> Result<String, BoxError> {
    Ok(match Reader(raw).i32()? {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => NaiveDate::from_sql(&Type::DATE, raw)?
            .format("%Y-%m-%d")
            .to_string(),
    })
}

/// An `interval` (microseconds, days, months) as an ISO 8601 duration, the
/// way PostgreSQL prints it with `IntervalStyle = iso_8601`.
fn interval_text(raw: &[u8]) -> Result<String, BoxError> {
    let mut reader = Reader(raw);
    let micros = reader.i64()?;
    let days = reader.i32()?;
    let months = reader.i32()?;
    let mut text = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (amount, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if amount != 0 {
            let _ = write!(text, "{amount}{unit}");
        }
    }
    if micros != 0 {
        text.push('T');
        let hours = micros / 3_600_000_000;
        let minutes = (micros % 3_600_000_000) / 60_000_000;
        let rest = micros % 60_000_000;
        if hours != 0 {
            let _ = write!(text, "{hours}H");
        }
        if minutes != 0 {
            let _ = write!(text, "{minutes}M");
        }
        if rest != 0 {
            let sign = if rest < 0 { "-" } else { "" };
            let rest = rest.unsigned_abs();
            let (seconds, fraction) = (rest / 1_000_000, rest % 1_000_000);
            if fraction == 0 {
                let _ = write!(text, "{sign}{seconds}S");
            } else {
                let fraction = format!("{fraction:06}");
                let _ = write!(text, "{sign}{seconds}.{}S", fraction.trim_end_matches('0'));
            }
        }
    }
    if text == "P" {
        text.push_str("T0S");
    }
    Ok(text)
}

fn uuid_text(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("a uuid has 16 bytes".into());
    }
    let hex: String = raw.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// `inet` / `cidr`: family, prefix bits, is-cidr flag, address length, address.
fn inet_text(raw: &[u8]) -> Result<String, BoxError> {
    let mut reader = Reader(raw);
    let family = reader.u8()?;
    let bits = reader.u8()?;
    let _is_cidr = reader.u8()?;
    let len = usize::from(reader.u8()?);
    let address = reader.take(len)?;
    let address: std::net::IpAddr = match (family, len) {
        (2, 4) => <[u8; 4]>::try_from(address)?.into(),
        (3, 16) => <[u8; 16]>::try_from(address)?.into(),
        _ => return Err("unknown inet address family".into()),
    };
    Ok(format!("{address}/{bits}"))
}

/// A binary array: dimensions, element type, then the elements in row-major
/// order; nested into JSON arrays dimension by dimension.
fn decode_array(member: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    let mut reader = Reader(raw);
    let dimensions = reader.i32()?;
    let _has_nulls = reader.i32()?;
    let _element_oid = reader.u32()?;
    if dimensions <= 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if dimensions > 6 {
        return Err("more array dimensions than PostgreSQL allows".into());
    }
    let mut lengths = Vec::with_capacity(6);
    for _ in 0..dimensions {
        let len = reader.i32()?;
        let _lower_bound = reader.i32()?;
        lengths.push(usize::try_from(len).map_err(|_| "invalid array dimension")?);
    }
    let total = lengths
        .iter()
        .try_fold(1usize, |total, len| total.checked_mul(*len))
        .ok_or("too many array elements")?;
    let mut elements = Vec::with_capacity(total.min(1 << 16));
    for _ in 0..total {
        elements.push(match reader.value()? {
            Some(bytes) => decode(member, bytes),
            None => Value::Null,
        });
    }
    Ok(nest(&lengths, &mut elements.into_iter()))
}

fn nest(lengths: &[usize], elements: &mut impl Iterator<Item = Value>) -> Value {
    match lengths {
        [] | [_] => Value::Array(
            elements
                .take(lengths.first().copied().unwrap_or(0))
                .collect(),
        ),
        [len, inner @ ..] => Value::Array((0..*len).map(|_| nest(inner, elements)).collect()),
    }
}

/// A binary composite (row) value: field count, then per field its type oid
/// and value. Named composites know their field names; anonymous `record`s
/// get `f1`, `f2`, … as PostgreSQL's `row_to_json` does.
fn decode_composite(fields: Option<&[(String, Type)]>, raw: &[u8]) -> Result<Value, BoxError> {
    let mut reader = Reader(raw);
    let count = reader.i32()?;
    let mut object = Map::new();
    for index in 0..usize::try_from(count).map_err(|_| "invalid field count")? {
        let oid = reader.u32()?;
        let value = reader.value()?;
        let (name, ty) = match fields.and_then(|fields| fields.get(index)) {
            Some((name, ty)) => (name.clone(), Some(ty.clone())),
            None => (format!("f{}", index + 1), Type::from_oid(oid)),
        };
        let value = match (value, ty) {
            (None, _) => Value::Null,
            (Some(bytes), Some(ty)) => decode(&ty, bytes),
            (Some(_), None) => Value::String(format!(
                "(value of type oid {oid}: cast it to text, e.g. expr::text, to read it)"
            )),
        };
        object.insert(name, value);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend(ndigits.to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(dscale.to_be_bytes());
        for digit in digits {
            raw.extend(digit.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_keep_every_digit() {
        let cases = [
            (numeric(0, 0, 0, 0, &[]), "0"),
            (numeric(0, 0, 0, 2, &[]), "0.00"),
            (numeric(2, 1, 0, 2, &[8, 5000]), "85000.00"),
            (numeric(3, 1, 0x4000, 3, &[12, 3456, 7800]), "-123456.780"),
            (numeric(1, -2, 0, 8, &[1234]), "0.00001234"),
            (numeric(1, 2, 0, 0, &[1]), "100000000"),
            (numeric(0, 0, 0xC000, 0, &[]), "NaN"),
            (numeric(0, 0, 0xD000, 0, &[]), "Infinity"),
        ];
        for (raw, text) in cases {
            assert_eq!(numeric_text(&raw).unwrap(), text);
        }
        assert!(numeric_text(&numeric(1, 0, 0, 0, &[10000])).is_err());
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn intervals_read_as_iso_8601() {
        let interval = |micros: i64, days: i32, months: i32| {
            let mut raw = micros.to_be_bytes().to_vec();
            raw.extend(days.to_be_bytes());
            raw.extend(months.to_be_bytes());
            interval_text(&raw).unwrap()
        };
        assert_eq!(interval(0, 0, 0), "PT0S");
        assert_eq!(
            interval(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, 3, 14),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval(-1_000_000, 0, 0), "PT-1S");
    }

    #[test]
    fn unknown_types_become_a_placeholder() {
        let value = decode(&Type::TS_VECTOR, b"\0\0\0\0");
        assert!(value.as_str().unwrap().contains("tsvector"), "{value}");
        assert!(value.as_str().unwrap().contains("::text"), "{value}");
    }

    #[test]
    fn floats_outside_json_are_strings() {
        assert_eq!(float(f64::NAN, false), Value::String("NaN".into()));
        assert_eq!(float(f64::NEG_INFINITY, false), "-Infinity");
        assert_eq!(float(f64::from(0.1f32), true), serde_json::json!(0.1));
    }

    #[test]
    fn money_in_cents() {
        assert_eq!(money_text(123456), "1234.56");
        assert_eq!(money_text(-5), "-0.05");
    }
}
