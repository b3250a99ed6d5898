//! Event properties written straight to JSON text, with Mixpanel's per-value limits checked as
//! they are written.
//!
//! Most of the caller's cost in `track` is turning properties into the record's text. Building
//! a `serde_json::Value` tree, merging it with the super properties and serializing the merged
//! map allocates every name and value more than once. A binding drives a [`PropertiesWriter`]
//! from its own values instead, and the client copies the finished text of each property into
//! the record.
//!
//! The writer enforces the limits that concern one value: fewer than 255 elements in a list,
//! objects nested at most 3 deep, and non-empty property names. The limits of the whole event
//! (property count and encoded size) are checked when the record is assembled.

use std::ops::Range;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;
use crate::protocol::{MAX_ARRAY_ELEMENTS, MAX_NESTING_DEPTH};

/// The call-site properties of one event, encoded as JSON.
///
/// Build one with a [`PropertiesWriter`], or from a JSON object with
/// [`EncodedProperties::from_value`], and pass it to [`crate::Client::track_encoded`].
#[derive(Debug, Clone, Default)]
pub struct EncodedProperties {
    /// `"name":value` entries separated by commas, without the enclosing braces.
    text: Vec<u8>,
    /// The unescaped property names, concatenated.
    names: String,
    entries: Vec<Entry>,
    non_finite_replaced: u64,
}

/// The location of one top-level property in the buffers of [`EncodedProperties`].
#[derive(Debug, Clone)]
struct Entry {
    /// The property's name in `names`.
    name: Range<usize>,
    /// The whole `"name":value` text in `text`.
    text: Range<usize>,
    /// The value's text in `text`.
    value: Range<usize>,
}

impl EncodedProperties {
    /// Encodes a JSON object, or `null` for no properties.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when `properties` is another JSON type, a name is empty, or
    /// a value breaks a per-value limit (see [`PropertiesWriter`]).
    pub fn from_value(properties: Value) -> Result<Self, Error> {
        Self::from_map(&crate::event::properties_object(properties)?)
    }

    /// Encodes the properties of a JSON object.
    ///
    /// # Errors
    /// As [`EncodedProperties::from_value`].
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, Error> {
        let mut writer = PropertiesWriter::new();
        for (name, value) in map {
            writer.property(name)?;
            writer.json(value)?;
        }
        Ok(writer.finish())
    }

    /// Returns the number of properties.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the length of the encoded text, in bytes.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Returns how many NaN or infinite floats were written as `null`.
    pub fn non_finite_replaced(&self) -> u64 {
        self.non_finite_replaced
    }

    /// Returns whether a property called `name` is present.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| &self.names[entry.name.clone()] == name)
    }

    /// Iterates over the properties as their names and `"name":value` texts.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|entry| {
            (
                &self.names[entry.name.clone()],
                &self.text[entry.text.clone()],
            )
        })
    }

    /// Decodes the value of property `name`, or returns `None` when it is absent.
    pub(crate) fn value(&self, name: &str) -> Option<Value> {
        let entry = self
            .entries
            .iter()
            .find(|entry| &self.names[entry.name.clone()] == name)?;
        serde_json::from_slice(&self.text[entry.value.clone()]).ok()
    }
}

/// An open list or object inside the property being written.
#[derive(Debug, Clone, Copy)]
enum Open {
    List { elements: usize },
    Object { fields: usize },
}

/// Writes event properties one value at a time into an [`EncodedProperties`].
///
/// Start each top-level property with [`PropertiesWriter::property`], then write exactly one
/// value: a scalar, or a list or object opened with `begin_*` and closed with `end_*`. Inside
/// an object, [`PropertiesWriter::key`] precedes each field's value. A writer used out of this
/// order produces invalid JSON, which debug builds catch with an assertion.
///
/// A list with 255 or more elements, or an object nested deeper than 3 levels, fails with
/// [`Error::InvalidProperty`] naming the top-level property, because Mixpanel drops such
/// events. NaN and infinite floats are written as `null` and counted.
#[derive(Debug, Default)]
pub struct PropertiesWriter {
    out: EncodedProperties,
    open: Vec<Open>,
    /// The current top-level property: its name in `out.names`, and the start of its entry
    /// and of its value in `out.text`. `None` before the first.
    started: Option<(Range<usize>, usize, usize)>,
}

impl PropertiesWriter {
    /// Creates an empty writer.
    pub fn new() -> Self {
        PropertiesWriter {
            out: EncodedProperties {
                text: Vec::with_capacity(256),
                names: String::with_capacity(64),
                entries: Vec::with_capacity(12),
                non_finite_replaced: 0,
            },
            open: Vec::new(),
            started: None,
        }
    }

    /// Starts the top-level property `name`.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when `name` is empty.
    pub fn property(&mut self, name: &str) -> Result<(), Error> {
        debug_assert!(self.open.is_empty(), "a list or object is still open");
        if name.is_empty() {
            return Err(Error::InvalidProperty {
                name: String::new(),
                reason: "property names must not be empty; rename the property".to_owned(),
            });
        }
        self.close_entry();
        if !self.out.entries.is_empty() {
            self.out.text.push(b',');
        }
        let text_start = self.out.text.len();
        write_json(&mut self.out.text, name);
        self.out.text.push(b':');
        let names_start = self.out.names.len();
        self.out.names.push_str(name);
        self.started = Some((
            names_start..self.out.names.len(),
            text_start,
            self.out.text.len(),
        ));
        Ok(())
    }

    /// Writes the name of the next field of the innermost open object.
    pub fn key(&mut self, name: &str) {
        match self.open.last_mut() {
            Some(Open::Object { fields }) => {
                if *fields > 0 {
                    self.out.text.push(b',');
                }
                *fields += 1;
            }
            _ => debug_assert!(false, "key() outside an object"),
        }
        write_json(&mut self.out.text, name);
        self.out.text.push(b':');
    }

    /// Writes `null`.
    pub fn null(&mut self) {
        self.element();
        self.out.text.extend_from_slice(b"null");
    }

    /// Writes a boolean.
    pub fn bool(&mut self, value: bool) {
        self.element();
        self.out
            .text
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// Writes a signed integer.
    pub fn i64(&mut self, value: i64) {
        self.element();
        write_json(&mut self.out.text, &value);
    }

    /// Writes an unsigned integer.
    pub fn u64(&mut self, value: u64) {
        self.element();
        write_json(&mut self.out.text, &value);
    }

    /// Writes a float; NaN and infinities become `null` and are counted.
    pub fn f64(&mut self, value: f64) {
        self.element();
        if value.is_finite() {
            write_json(&mut self.out.text, &value);
        } else {
            self.out.non_finite_replaced += 1;
            self.out.text.extend_from_slice(b"null");
        }
    }

    /// Writes a string.
    pub fn str(&mut self, value: &str) {
        self.element();
        write_json(&mut self.out.text, value);
    }

    /// Opens a list.
    pub fn begin_list(&mut self) {
        self.element();
        self.out.text.push(b'[');
        self.open.push(Open::List { elements: 0 });
    }

    /// Closes the innermost list.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when the list has 255 or more elements.
    pub fn end_list(&mut self) -> Result<(), Error> {
        let Some(Open::List { elements }) = self.open.pop() else {
            debug_assert!(false, "end_list() without an open list");
            return Ok(());
        };
        self.out.text.push(b']');
        if elements >= MAX_ARRAY_ELEMENTS {
            return Err(self.limit_error(format!(
                "the list has {elements} elements; Mixpanel accepts fewer than {MAX_ARRAY_ELEMENTS}, so split it or send a count instead"
            )));
        }
        Ok(())
    }

    /// Opens an object.
    ///
    /// # Errors
    /// [`Error::InvalidProperty`] when objects would be nested more than 3 levels deep.
    pub fn begin_object(&mut self) -> Result<(), Error> {
        let depth = 1 + self
            .open
            .iter()
            .filter(|open| matches!(open, Open::Object { .. }))
            .count();
        if depth > MAX_NESTING_DEPTH {
            return Err(self.limit_error(format!(
                "objects are nested more than {MAX_NESTING_DEPTH} levels deep, which Mixpanel rejects; flatten the inner objects into dotted property names"
            )));
        }
        self.element();
        self.out.text.push(b'{');
        self.open.push(Open::Object { fields: 0 });
        Ok(())
    }

    /// Closes the innermost object.
    pub fn end_object(&mut self) {
        let closed = self.open.pop();
        debug_assert!(
            matches!(closed, Some(Open::Object { .. })),
            "end_object() without an open object"
        );
        self.out.text.push(b'}');
    }

    /// Writes a JSON value, checking the same limits as the typed methods.
    ///
    /// # Errors
    /// As [`PropertiesWriter::end_list`] and [`PropertiesWriter::begin_object`].
    pub fn json(&mut self, value: &Value) -> Result<(), Error> {
        match value {
            Value::Null => self.null(),
            Value::Bool(value) => self.bool(*value),
            Value::Number(number) => {
                self.element();
                write_json(&mut self.out.text, number);
            }
            Value::String(text) => self.str(text),
            Value::Array(items) => {
                self.begin_list();
                for item in items {
                    self.json(item)?;
                }
                self.end_list()?;
            }
            Value::Object(fields) => {
                self.begin_object()?;
                for (name, field) in fields {
                    self.key(name);
                    self.json(field)?;
                }
                self.end_object();
            }
        }
        Ok(())
    }

    /// Finishes the last property and returns the encoded properties.
    pub fn finish(mut self) -> EncodedProperties {
        debug_assert!(self.open.is_empty(), "a list or object is still open");
        self.close_entry();
        self.out
    }

    /// Accounts for one more element when the innermost open value is a list.
    fn element(&mut self) {
        if let Some(Open::List { elements }) = self.open.last_mut() {
            if *elements > 0 {
                self.out.text.push(b',');
            }
            *elements += 1;
        }
    }

    fn close_entry(&mut self) {
        if let Some((name, text_start, value_start)) = self.started.take() {
            let end = self.out.text.len();
            self.out.entries.push(Entry {
                name,
                text: text_start..end,
                value: value_start..end,
            });
        }
    }

    fn limit_error(&self, reason: String) -> Error {
        let name = self
            .started
            .as_ref()
            .map(|(name, _, _)| self.out.names[name.clone()].to_owned())
            .unwrap_or_default();
        Error::InvalidProperty { name, reason }
    }
}

/// Appends `value` as compact JSON.
pub(crate) fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and numbers always serialize");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(properties: &EncodedProperties) -> Value {
        let mut text = b"{".to_vec();
        text.extend_from_slice(&properties.text);
        text.push(b'}');
        serde_json::from_slice(&text).unwrap()
    }

    #[test]
    fn writes_every_json_type() {
        let mut writer = PropertiesWriter::new();
        writer.property("plan").unwrap();
        writer.str("pro \"x\"\n");
        writer.property("seats").unwrap();
        writer.i64(-12);
        writer.property("big").unwrap();
        writer.u64(u64::MAX);
        writer.property("price").unwrap();
        writer.f64(9.99);
        writer.property("tags").unwrap();
        writer.begin_list();
        writer.str("a");
        writer.bool(true);
        writer.null();
        writer.end_list().unwrap();
        writer.property("address").unwrap();
        writer.begin_object().unwrap();
        writer.key("city");
        writer.str("Oslo");
        writer.key("empty");
        writer.begin_list();
        writer.end_list().unwrap();
        writer.end_object();
        let properties = writer.finish();

        assert_eq!(
            object(&properties),
            json!({
                "plan": "pro \"x\"\n", "seats": -12, "big": u64::MAX, "price": 9.99,
                "tags": ["a", true, null], "address": {"city": "Oslo", "empty": []}
            })
        );
        assert_eq!(properties.len(), 6);
        assert!(properties.contains("tags"));
        assert!(!properties.contains("tag"));
        assert_eq!(properties.value("seats"), Some(json!(-12)));
        assert_eq!(properties.value("missing"), None);
    }

    #[test]
    fn non_finite_floats_become_null_and_are_counted() {
        let mut writer = PropertiesWriter::new();
        writer.property("a").unwrap();
        writer.begin_list();
        writer.f64(f64::NAN);
        writer.f64(f64::INFINITY);
        writer.f64(1.5);
        writer.end_list().unwrap();
        let properties = writer.finish();
        assert_eq!(object(&properties), json!({"a": [null, null, 1.5]}));
        assert_eq!(properties.non_finite_replaced(), 2);
    }

    #[test]
    fn long_list_names_the_property() {
        let error =
            EncodedProperties::from_value(json!({"ok": 1, "ids": vec![1; 255]})).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { name, reason } if name == "ids" && reason.contains("255 elements")),
            "{error}"
        );
        assert!(EncodedProperties::from_value(json!({"ids": vec![1; 254]})).is_ok());
    }

    #[test]
    fn objects_nest_at_most_three_levels() {
        let allowed = json!({"a": {"b": {"c": {"d": 1}}}});
        assert!(EncodedProperties::from_value(allowed).is_ok());

        let too_deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
        let error = EncodedProperties::from_value(too_deep).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { name, reason } if name == "a" && reason.contains("nested")),
            "{error}"
        );
    }

    #[test]
    fn lists_do_not_count_as_nesting() {
        let value = json!({"a": [[{"b": [{"c": {"d": 1}}]}]]});
        assert!(EncodedProperties::from_value(value).is_ok());
    }

    #[test]
    fn empty_names_and_non_objects_are_rejected() {
        let error = EncodedProperties::from_value(json!({"": 1})).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { reason, .. } if reason.contains("must not be empty"))
        );

        let error = EncodedProperties::from_value(json!([1, 2])).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { reason, .. } if reason.contains("got a list"))
        );

        assert!(
            EncodedProperties::from_value(Value::Null)
                .unwrap()
                .is_empty()
        );
    }
}
