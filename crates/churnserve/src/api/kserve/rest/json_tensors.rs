//! JSON tensors as the V2 REST protocol sends them, made into what the gRPC adapter
//! reads: Python's bare `NaN` read as `null`, and nested `data` arrays as the raw
//! little-endian bytes of their datatype.

use serde_json::Value;

/// `json` with every `NaN` outside a string written `null`: Python's `json` (and so
/// tritonclient, for a missing value in a float tensor) writes NaN as a bare word that
/// JSON does not have.
pub(super) fn nan_as_null(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !json.windows(3).any(|w| w == b"NaN") {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut index = 0;
    while index < json.len() {
        let byte = json[index];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if json[index..].starts_with(b"NaN") {
            out.extend_from_slice(b"null");
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// A JSON tensor's elements (nested arrays flattened in row-major order) as the raw bytes
/// of `datatype`; a datatype the scorer does not take encodes to nothing, and the scorer
/// names the datatypes it takes.
pub(super) fn encode(datatype: &str, data: &Value) -> Result<Vec<u8>, String> {
    let mut elements = Vec::new();
    flatten(data, &mut elements);
    let mut bytes = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let wrong = |expected: &str| {
            format!("element {index} is {element}; expected {expected} for datatype {datatype}")
        };
        match datatype {
            "FP64" | "FP32" => {
                // null stands for a missing value, which JSON cannot write as NaN.
                let value = match element {
                    Value::Null => f64::NAN,
                    other => other.as_f64().ok_or_else(|| wrong("a number or null"))?,
                };
                if datatype == "FP64" {
                    bytes.extend(value.to_le_bytes());
                } else {
                    bytes.extend((value as f32).to_le_bytes());
                }
            }
            "INT64" | "INT32" => {
                let value = element.as_i64().ok_or_else(|| wrong("an integer"))?;
                if datatype == "INT64" {
                    bytes.extend(value.to_le_bytes());
                } else {
                    let value = i32::try_from(value).map_err(|_| wrong("a 32-bit integer"))?;
                    bytes.extend(value.to_le_bytes());
                }
            }
            "BOOL" => bytes.push(u8::from(
                element.as_bool().ok_or_else(|| wrong("true or false"))?,
            )),
            "BYTES" => {
                let text = element.as_str().ok_or_else(|| wrong("a string"))?;
                let length = u32::try_from(text.len()).map_err(|_| wrong("a shorter string"))?;
                bytes.extend(length.to_le_bytes());
                bytes.extend(text.as_bytes());
            }
            _ => return Ok(Vec::new()),
        }
    }
    Ok(bytes)
}

fn flatten<'a>(value: &'a Value, into: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, into)),
        other => into.push(other),
    }
}
