//! A typed property value, the alternative to JSON text for crossing the boundary.
//!
//! Compiled only with the `representation-benchmark` feature, which `bench/run.sh` enables to
//! measure both representations from Kotlin and Swift. The released library takes JSON text
//! because that measured cheaper per `track` call in Kotlin, where each argument costs a JNA
//! call (see `docs/benchmarks.md` at the repository root).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use crate::client::Client;
use crate::errors::GroupscopeError;
use crate::values;

/// One property value as a uniffi enum. The variants end in `Value` so that they cannot
/// shadow Kotlin's `List`, `Int` or `Double` inside the generated sealed class.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum PropertyValue {
    /// JSON `null`.
    NullValue,
    /// A boolean.
    BoolValue { value: bool },
    /// An integer.
    IntValue { value: i64 },
    /// A finite float; a non-finite one is sent as `null`.
    DoubleValue { value: f64 },
    /// A string.
    TextValue { value: String },
    /// A list.
    ListValue { items: Vec<PropertyValue> },
    /// An object.
    ObjectValue {
        entries: HashMap<String, PropertyValue>,
    },
}

impl From<PropertyValue> for Value {
    fn from(value: PropertyValue) -> Self {
        match value {
            PropertyValue::NullValue => Value::Null,
            PropertyValue::BoolValue { value } => Value::Bool(value),
            PropertyValue::IntValue { value } => Value::Number(value.into()),
            PropertyValue::DoubleValue { value } => {
                Number::from_f64(value).map_or(Value::Null, Value::Number)
            }
            PropertyValue::TextValue { value } => Value::String(value),
            PropertyValue::ListValue { items } => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            PropertyValue::ObjectValue { entries } => Value::Object(into_object(entries)),
        }
    }
}

fn into_object(entries: HashMap<String, PropertyValue>) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, value)| (key, Value::from(value)))
        .collect()
}

/// Decodes JSON-encoded properties and returns how many there are: the boundary cost of the
/// JSON representation without the core's work.
#[uniffi::export]
pub fn decode_json_properties(properties_json: String) -> Result<u64, GroupscopeError> {
    let properties = values::decode_object("properties", &properties_json)?;
    Ok(properties
        .as_object()
        .map_or(0, |object| object.len() as u64))
}

/// Converts typed properties and returns how many there are: the boundary cost of the typed
/// representation without the core's work.
#[uniffi::export]
pub fn decode_typed_properties(properties: HashMap<String, PropertyValue>) -> u64 {
    into_object(properties).len() as u64
}

#[uniffi::export]
impl Client {
    /// Records an event whose properties are typed values; otherwise as `track_encoded`.
    ///
    /// # Errors
    /// As `track_encoded`.
    pub fn track_typed(
        &self,
        event: String,
        properties: HashMap<String, PropertyValue>,
    ) -> Result<String, GroupscopeError> {
        self.track_value(&event, Value::Object(into_object(properties)))
    }
}
