//! Python values to JSON, by the one value-mapping rule that every groupscope binding follows.
//!
//! | Python value | JSON |
//! |---|---|
//! | `None`, `bool`, `str` | `null`, `true`/`false`, string |
//! | `int` | number, when it fits in `i64` or `u64`; otherwise an error |
//! | `float` | number; NaN and ±Infinity become `null` and are counted |
//! | `dict` with `str` keys | object |
//! | `list`, `tuple`, `set`, `frozenset` | list (a set's order is its iteration order) |
//! | `datetime.datetime` | string `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC; an aware value is converted to UTC, a naive one is read as UTC; milliseconds are always written and microseconds are truncated |
//! | `datetime.date` | string `YYYY-MM-DD` |
//! | `decimal.Decimal` | integer when it is whole and fits in 64 bits; otherwise a number when the shortest `float` form has the same value; otherwise its `str()` form as a string. NaN and Infinity become `null` and are counted |
//! | `uuid.UUID` | the canonical lowercase hyphenated string |
//!
//! A `str` holding a lone surrogate is encoded with U+FFFD in its place, so a request body is
//! always valid UTF-8. Subclasses map like their base (`bool` is checked before `int`).
//!
//! The properties of `track` and `import_event` are written straight to JSON text through the
//! core's [`PropertiesWriter`], without building a `serde_json::Value`; values of the
//! standard-library types above take the `Value` path and are then written. Both paths map
//! every value the same way.
//!
//! Any other value fails the whole conversion with an error that names the property path:
//! `bytes`, a `dict` key that is not a `str`, an arbitrary object, or nesting deeper than
//! [`MAX_DEPTH`]. So a call either enqueues its whole record or nothing.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType};
use groupscope::{EncodedProperties, PropertiesWriter};
use serde_json::{Map, Number, Value};

use crate::errors::{to_py_err, unsupported_value};
use crate::utf8;

/// Maximum nesting of lists and objects inside one property. It also stops a list that
/// contains itself.
pub const MAX_DEPTH: usize = 64;

/// The standard-library types that have a mapping, imported once per process.
struct SpecialTypes {
    datetime: Py<PyType>,
    date: Py<PyType>,
    decimal: Py<PyType>,
    uuid: Py<PyType>,
}

static SPECIAL_TYPES: PyOnceLock<SpecialTypes> = PyOnceLock::new();

fn special_types(py: Python<'_>) -> PyResult<&SpecialTypes> {
    SPECIAL_TYPES.get_or_try_init(py, || {
        let datetime = py.import("datetime")?;
        Ok(SpecialTypes {
            datetime: datetime.getattr("datetime")?.cast_into::<PyType>()?.unbind(),
            date: datetime.getattr("date")?.cast_into::<PyType>()?.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.cast_into::<PyType>()?.unbind(),
            uuid: py.import("uuid")?.getattr("UUID")?.cast_into::<PyType>()?.unbind(),
        })
    })
}

/// One step of the path from a top-level property to the value that failed.
enum PathSegment {
    Key(String),
    Index(usize),
}

/// A conversion error: the reason and the path of the value that failed.
struct ConversionFailure {
    /// Segments from the failing value up to the top level (reversed on output).
    path: Vec<PathSegment>,
    reason: String,
    /// A limit of the core that the value breaks; it is raised as the core's error instead.
    limit: Option<groupscope::Error>,
    /// Not an error: the value needs Python code, so the conversion restarts over copies.
    needs_snapshots: bool,
}

impl ConversionFailure {
    fn new(reason: impl Into<String>) -> Self {
        ConversionFailure {
            path: Vec::new(),
            reason: reason.into(),
            limit: None,
            needs_snapshots: false,
        }
    }

    fn limit(error: groupscope::Error) -> Self {
        ConversionFailure {
            limit: Some(error),
            ..ConversionFailure::new("")
        }
    }

    fn needs_snapshots() -> Self {
        ConversionFailure {
            needs_snapshots: true,
            ..ConversionFailure::new("")
        }
    }

    fn at(mut self, segment: PathSegment) -> Self {
        self.path.push(segment);
        self
    }

    /// Renders the path as `plan.seats[2]`, starting at `argument` when the failure is in a
    /// top-level argument that is not itself a property.
    fn render_path(&self, argument: &str) -> String {
        let mut rendered = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                PathSegment::Key(key) if rendered.is_empty() => rendered.push_str(key),
                PathSegment::Key(key) => {
                    rendered.push('.');
                    rendered.push_str(key);
                }
                PathSegment::Index(index) => rendered.push_str(&format!("[{index}]")),
            }
        }
        if rendered.is_empty() || rendered.starts_with('[') {
            rendered.insert_str(0, argument);
        }
        rendered
    }
}

/// Converts Python values to JSON and counts the non-finite floats it replaced by `null`.
pub struct Converter<'py> {
    py: Python<'py>,
    non_finite_replaced: u64,
    /// Whether [`Converter::write`] iterates over copies of dicts. See
    /// [`Converter::encode_properties`].
    snapshots: bool,
}

impl<'py> Converter<'py> {
    /// Creates a converter with a zero count.
    pub fn new(py: Python<'py>) -> Self {
        Converter {
            py,
            non_finite_replaced: 0,
            snapshots: false,
        }
    }

    /// Returns how many non-finite floats were replaced by `null` so far.
    pub fn non_finite_replaced(&self) -> u64 {
        self.non_finite_replaced
    }

    /// Converts the `properties` argument: `None` becomes `null`, a `dict` becomes an object.
    ///
    /// # Errors
    /// `UnsupportedValueError` (a `TypeError`) naming the property whose value has no mapping,
    /// or naming `argument` when it is not a `dict`.
    pub fn properties(&mut self, argument: &str, properties: Option<&Bound<'py, PyAny>>) -> PyResult<Value> {
        let Some(properties) = properties.filter(|value| !value.is_none()) else {
            return Ok(Value::Null);
        };
        if properties.cast::<PyDict>().is_err() {
            let type_name = type_name(properties);
            return Err(unsupported_value(
                self.py,
                format!("{argument} must be a dict with str keys, not {type_name}; pass a dict or None"),
            ));
        }
        self.value(argument, properties)
    }

    /// Converts one value passed as `argument`.
    ///
    /// # Errors
    /// `UnsupportedValueError` naming `argument` and the path inside it.
    pub fn value(&mut self, argument: &str, value: &Bound<'py, PyAny>) -> PyResult<Value> {
        self.convert(value, 0).map_err(|failure| self.error(argument, failure))
    }

    /// Writes the `properties` argument of an event straight to JSON text: `None` gives no
    /// properties, a `dict` one property per item.
    ///
    /// # Errors
    /// `UnsupportedValueError` as [`Converter::properties`], and the core's
    /// `InvalidPropertyError` for an empty name, a list of 255 or more elements or objects
    /// nested deeper than 3 levels.
    ///
    /// The dicts are iterated in place while every value is of a type whose conversion runs no
    /// Python code, so nothing can change them meanwhile. A value that needs Python code (a
    /// `datetime`, for example) restarts the conversion over copies of the dicts.
    pub fn encode_properties(&mut self, argument: &str, properties: Option<&Bound<'py, PyAny>>) -> PyResult<EncodedProperties> {
        let Some(properties) = properties.filter(|value| !value.is_none()) else {
            return Ok(PropertiesWriter::new().finish());
        };
        let Ok(dict) = properties.cast::<PyDict>() else {
            let type_name = type_name(properties);
            return Err(unsupported_value(
                self.py,
                format!("{argument} must be a dict with str keys, not {type_name}; pass a dict or None"),
            ));
        };
        self.snapshots = false;
        match self.encode_dict(dict) {
            Err(failure) if failure.needs_snapshots => {
                self.snapshots = true;
                self.encode_dict(dict)
            }
            other => other,
        }
        .map_err(|failure| self.error(argument, failure))
    }

    fn encode_dict(&mut self, dict: &Bound<'py, PyDict>) -> Result<EncodedProperties, ConversionFailure> {
        let mut writer = PropertiesWriter::new();
        for (key, item) in self.iterable(dict)?.iter() {
            let name = dict_key(&key)?;
            writer
                .property(&name)
                .map_err(ConversionFailure::limit)
                .and_then(|()| self.write(&mut writer, &item, 1))
                .map_err(|failure| failure.at(PathSegment::Key(name.into_owned())))?;
        }
        Ok(writer.finish())
    }

    /// The dict itself, or a copy of it once conversions may run Python code.
    fn iterable(&self, dict: &Bound<'py, PyDict>) -> Result<Bound<'py, PyDict>, ConversionFailure> {
        if self.snapshots {
            dict.copy().map_err(|error| ConversionFailure::new(error.to_string()))
        } else {
            Ok(dict.clone())
        }
    }

    fn error(&self, argument: &str, failure: ConversionFailure) -> PyErr {
        if let Some(limit) = failure.limit {
            return to_py_err(self.py, limit);
        }
        let path = failure.render_path(argument);
        let reason = failure.reason;
        unsupported_value(self.py, format!("cannot send property {path:?}: {reason}"))
    }

    /// Writes one value. The common types are written directly; the others are converted to
    /// a `Value` by [`Converter::convert`] first, so the mapping stays in one place.
    fn write(&mut self, writer: &mut PropertiesWriter, value: &Bound<'py, PyAny>, depth: usize) -> Result<(), ConversionFailure> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }

        if let Ok(string) = value.cast::<PyString>() {
            writer.str(&python_str_ref(string));
        } else if value.is_none() {
            writer.null();
        } else if let Ok(boolean) = value.cast::<PyBool>() {
            writer.bool(boolean.is_true());
        } else if let Ok(integer) = value.cast::<PyInt>() {
            match integer_value(integer)? {
                Value::Number(number) if number.is_i64() => writer.i64(number.as_i64().unwrap_or_default()),
                Value::Number(number) => writer.u64(number.as_u64().unwrap_or_default()),
                other => writer.json(&other).map_err(ConversionFailure::limit)?,
            }
        } else if let Ok(float) = value.cast::<PyFloat>() {
            writer.f64(float.value());
        } else if let Ok(dict) = value.cast::<PyDict>() {
            writer.begin_object().map_err(ConversionFailure::limit)?;
            for (key, item) in self.iterable(dict)?.iter() {
                let name = dict_key(&key)?;
                writer.key(&name);
                self.write(writer, &item, depth + 1)
                    .map_err(|failure| failure.at(PathSegment::Key(name.into_owned())))?;
            }
            writer.end_object();
        } else if let Ok(list) = value.cast::<PyList>() {
            self.write_sequence(writer, list.iter(), depth)?;
        } else if let Ok(tuple) = value.cast::<PyTuple>() {
            self.write_sequence(writer, tuple.iter(), depth)?;
        } else if !self.snapshots {
            return Err(ConversionFailure::needs_snapshots());
        } else {
            let converted = self.convert(value, depth)?;
            writer.json(&converted).map_err(ConversionFailure::limit)?;
        }
        Ok(())
    }

    fn write_sequence(
        &mut self,
        writer: &mut PropertiesWriter,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        depth: usize,
    ) -> Result<(), ConversionFailure> {
        writer.begin_list();
        for (index, item) in items.enumerate() {
            self.write(writer, &item, depth + 1)
                .map_err(|failure| failure.at(PathSegment::Index(index)))?;
        }
        writer.end_list().map_err(ConversionFailure::limit)
    }

    fn convert(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> Result<Value, ConversionFailure> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }

        if let Ok(string) = value.cast::<PyString>() {
            return Ok(Value::String(python_str(string)));
        }
        if value.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(boolean) = value.cast::<PyBool>() {
            return Ok(Value::Bool(boolean.is_true()));
        }
        if let Ok(integer) = value.cast::<PyInt>() {
            return integer_value(integer);
        }
        if let Ok(float) = value.cast::<PyFloat>() {
            return Ok(self.float_value(float.value()));
        }
        if let Ok(dict) = value.cast::<PyDict>() {
            return self.dict_value(dict, depth);
        }
        if let Ok(list) = value.cast::<PyList>() {
            return self.sequence_value(list.iter(), depth);
        }
        if let Ok(tuple) = value.cast::<PyTuple>() {
            return self.sequence_value(tuple.iter(), depth);
        }
        if let Ok(set) = value.cast::<PySet>() {
            return self.sequence_value(set.iter(), depth);
        }
        if let Ok(set) = value.cast::<PyFrozenSet>() {
            return self.sequence_value(set.iter(), depth);
        }
        self.standard_library_value(value)
    }

    fn float_value(&mut self, float: f64) -> Value {
        match Number::from_f64(float) {
            Some(number) => Value::Number(number),
            None => {
                self.non_finite_replaced += 1;
                Value::Null
            }
        }
    }

    fn dict_value(&mut self, dict: &Bound<'py, PyDict>, depth: usize) -> Result<Value, ConversionFailure> {
        // Iterating over a snapshot of the items keeps the conversion sound when Python code
        // that it runs (a `tzinfo.utcoffset`, for example) or another thread changes the dict.
        let items = dict.items();
        let mut object = Map::with_capacity(items.len());
        for pair in items.iter() {
            let (key, item): (Bound<'py, PyAny>, Bound<'py, PyAny>) =
                pair.extract().map_err(|error: PyErr| ConversionFailure::new(error.to_string()))?;
            let key = dict_key(&key)?.into_owned();
            let converted = self
                .convert(&item, depth + 1)
                .map_err(|failure| failure.at(PathSegment::Key(key.clone())))?;
            object.insert(key, converted);
        }
        Ok(Value::Object(object))
    }

    fn sequence_value(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        depth: usize,
    ) -> Result<Value, ConversionFailure> {
        let mut list = Vec::new();
        for (index, item) in items.enumerate() {
            let converted = self
                .convert(&item, depth + 1)
                .map_err(|failure| failure.at(PathSegment::Index(index)))?;
            list.push(converted);
        }
        Ok(Value::Array(list))
    }

    /// Maps `datetime`, `date`, `Decimal` and `UUID`; rejects everything else.
    fn standard_library_value(&mut self, value: &Bound<'py, PyAny>) -> Result<Value, ConversionFailure> {
        let failed = |error: PyErr| ConversionFailure::new(error.to_string());
        let types = special_types(self.py).map_err(failed)?;

        if value.is_instance(types.datetime.bind(self.py)).map_err(failed)? {
            return datetime_string(value).map(Value::String).map_err(|error| {
                ConversionFailure::new(format!(
                    "the datetime cannot be converted to UTC ({error}); pass a datetime whose UTC value is between the years 1 and 9999"
                ))
            });
        }
        if value.is_instance(types.date.bind(self.py)).map_err(failed)? {
            return date_string(value).map(Value::String).map_err(failed);
        }
        if value.is_instance(types.decimal.bind(self.py)).map_err(failed)? {
            return self.decimal_value(value).map_err(failed);
        }
        if value.is_instance(types.uuid.bind(self.py)).map_err(failed)? {
            let text = value.str().map_err(failed)?;
            return Ok(Value::String(python_str(&text)));
        }

        let type_name = type_name(value);
        Err(ConversionFailure::new(format!(
            "a value of type {type_name} has no JSON form; convert it to str, int, float, bool, None, list, dict, datetime, date, Decimal or UUID"
        )))
    }

    fn decimal_value(&mut self, decimal: &Bound<'py, PyAny>) -> PyResult<Value> {
        if !decimal.call_method0("is_finite")?.is_truthy()? {
            self.non_finite_replaced += 1;
            return Ok(Value::Null);
        }

        // `adjusted()` is the exponent of the most significant digit. A value of 10**20 or
        // more does not fit in 64 bits, and converting it with `__int__` could take minutes
        // for an exponent such as 1E+1000000, so the integer path is skipped for it.
        let adjusted: i64 = decimal.call_method0("adjusted")?.extract()?;
        if adjusted < 20 {
            let integral = decimal.call_method0("to_integral_value")?;
            if integral.eq(decimal)? {
                let integer = integral.call_method0("__int__")?;
                if let Ok(value) = integer.extract::<i64>() {
                    return Ok(Value::from(value));
                }
                if let Ok(value) = integer.extract::<u64>() {
                    return Ok(Value::from(value));
                }
            }
        }

        let float: f64 = decimal.call_method0("__float__")?.extract()?;
        if let Some(number) = Number::from_f64(float) {
            // `Decimal` itself, not the value's class, because a subclass may take other
            // constructor arguments.
            let decimal_type = special_types(self.py)?.decimal.bind(self.py);
            let shortest = decimal_type.call1((float.to_string(),))?;
            if shortest.eq(decimal)? {
                return Ok(Value::Number(number));
            }
        }
        let text = decimal.str()?;
        Ok(Value::String(python_str(&text)))
    }
}

fn too_deep() -> ConversionFailure {
    ConversionFailure::new(format!(
        "lists and dicts are nested deeper than {MAX_DEPTH} levels (is a list or dict inside itself?); flatten the value"
    ))
}

/// Reads a dict key, which must be a `str`.
fn dict_key<'a>(key: &'a Bound<'_, PyAny>) -> Result<Cow<'a, str>, ConversionFailure> {
    match key.cast::<PyString>() {
        Ok(key) => Ok(python_str_ref(key)),
        Err(_) => {
            let key_text = repr(key);
            let type_name = type_name(key);
            Err(ConversionFailure::new(format!(
                "the dict key {key_text} has type {type_name}, but JSON object keys must be str; convert the key with str()"
            )))
        }
    }
}

/// Reads a `str`, replacing each lone surrogate with one U+FFFD.
pub fn python_str(string: &Bound<'_, PyString>) -> String {
    python_str_ref(string).into_owned()
}

/// Reads a `str` without copying it when it has a UTF-8 form, replacing each lone surrogate
/// with one U+FFFD.
pub fn python_str_ref<'a>(string: &'a Bound<'_, PyString>) -> Cow<'a, str> {
    if let Some(text) = utf8::borrow(string) {
        return Cow::Borrowed(text);
    }
    match string.to_cow() {
        Ok(text) => Cow::Owned(text.into_owned()),
        Err(_) => Cow::Owned(replace_lone_surrogates(string)),
    }
}

/// Decodes a `str` that contains lone surrogates through UTF-16, so each lone surrogate
/// becomes exactly one U+FFFD. Decoding its UTF-8 form would give three per surrogate.
fn replace_lone_surrogates(string: &Bound<'_, PyString>) -> String {
    let encoded = string
        .call_method1("encode", ("utf-16-le", "surrogatepass"))
        .and_then(|bytes| bytes.extract::<Vec<u8>>());
    let Ok(bytes) = encoded else {
        return string.to_string_lossy().into_owned();
    };
    let units = bytes.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn integer_value(integer: &Bound<'_, PyInt>) -> Result<Value, ConversionFailure> {
    if let Ok(value) = integer.extract::<i64>() {
        return Ok(Value::from(value));
    }
    if let Ok(value) = integer.extract::<u64>() {
        return Ok(Value::from(value));
    }
    let text = repr(integer.as_any());
    Err(ConversionFailure::new(format!(
        "the integer {text} does not fit in 64 bits; send it as a str or a Decimal"
    )))
}

/// Formats a `datetime` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC; a naive value is read as UTC.
pub fn datetime_string(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let offset = value.call_method0("utcoffset")?;
    let utc = if offset.is_none() { value.clone() } else { value.call_method1("__sub__", (offset,))? };

    let field = |name: &str| -> PyResult<u32> { utc.getattr(name)?.extract() };
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        field("year")?,
        field("month")?,
        field("day")?,
        field("hour")?,
        field("minute")?,
        field("second")?,
        field("microsecond")? / 1000,
    ))
}

/// Converts a `datetime` to seconds since the epoch; a naive value is read as UTC.
pub fn datetime_seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = value.py();
    let offset = value.call_method0("utcoffset")?;
    let aware = if offset.is_none() {
        let utc = py.import("datetime")?.getattr("timezone")?.getattr("utc")?;
        let keywords = pyo3::types::PyDict::new(py);
        keywords.set_item("tzinfo", utc)?;
        value.call_method("replace", (), Some(&keywords))?
    } else {
        value.clone()
    };
    aware.call_method0("timestamp")?.extract()
}

/// Returns whether `value` is a `datetime.datetime`.
pub fn is_datetime(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let types = special_types(value.py())?;
    value.is_instance(types.datetime.bind(value.py()))
}

fn date_string(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let field = |name: &str| -> PyResult<u32> { value.getattr(name)?.extract() };
    Ok(format!("{:04}-{:02}-{:02}", field("year")?, field("month")?, field("day")?))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// `repr(value)`, shortened to 80 characters so an error message stays readable.
fn repr(value: &Bound<'_, PyAny>) -> String {
    let text = value.repr().map(|text| python_str(&text)).unwrap_or_else(|_| "<unprintable>".to_owned());
    if text.chars().count() <= 80 {
        return text;
    }
    let mut shortened: String = text.chars().take(77).collect();
    shortened.push_str("...");
    shortened
}

#[cfg(test)]
mod tests {
    use super::{ConversionFailure, PathSegment};

    fn failure_at(segments: Vec<PathSegment>) -> ConversionFailure {
        segments
            .into_iter()
            .fold(ConversionFailure::new("reason"), |failure, segment| failure.at(segment))
    }

    #[test]
    fn path_of_nested_value() {
        let failure = failure_at(vec![
            PathSegment::Key("name".to_owned()),
            PathSegment::Index(2),
            PathSegment::Key("seats".to_owned()),
            PathSegment::Key("plan".to_owned()),
        ]);

        assert_eq!(failure.render_path("properties"), "plan.seats[2].name");
    }

    #[test]
    fn path_of_top_level_argument() {
        assert_eq!(failure_at(vec![]).render_path("company_id"), "company_id");
        assert_eq!(failure_at(vec![PathSegment::Index(1)]).render_path("company_id"), "company_id[1]");
    }
}
