//! Type inference for CSV cells, so a profile property arrives with the Mixpanel data type a
//! person would expect from the text in the cell.
//!
//! Mixpanel supports five property types: string, numeric, boolean, date and list. Its
//! "Supported Properties Data Type" page (docs.mixpanel.com, data-structure/property-reference)
//! states that booleans are the JSON constants `true` and `false`, that dates are ISO strings
//! `YYYY-MM-DDTHH:MM:SS` in UTC (or `YYYY-MM-DD`), and that any value matching no other type is
//! a string. A CSV cell is text, so [`infer_value`] maps it to one of those types:
//!
//! | cell                                  | value sent                                       |
//! |---------------------------------------|--------------------------------------------------|
//! | empty                                 | nothing: the property is absent from the `$set`   |
//! | `true`, `FALSE` (any letter case)     | a JSON boolean                                   |
//! | `42`, `-7`, `3.25`, `1e6`             | a JSON number                                    |
//! | `007`, `+5`, `1.`, `NaN`, `inf`       | a string, because a spreadsheet keeps them as text |
//! | `2024-05-01T12:00:00+02:00`           | `"2024-05-01T10:00:00"`, the UTC date string     |
//! | `2024-05-01T12:00:00`, `2024-05-01`   | the same string: Mixpanel reads these as dates   |
//! | `[a, 2, true]`, `["a","b"]`, `[]`     | a JSON list whose items are inferred the same way |
//! | anything else                         | the cell as a string                             |
//!
//! NOTE: Mixpanel does not publish the exact parser of its CSV uploads. The rules above follow
//! its documented data types; a cell that Mixpanel would read differently is a string here.

use serde_json::{Number, Value};

/// Infers the JSON value of one CSV cell. Returns `None` for an empty cell, which leaves the
/// property out of the profile update.
pub fn infer_value(cell: &str) -> Option<Value> {
    if cell.is_empty() {
        return None;
    }

    if let Some(inner) = cell.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return Some(infer_list(cell, inner));
    }

    Some(infer_scalar(cell))
}

/// Infers a cell that is not a list.
fn infer_scalar(cell: &str) -> Value {
    if cell.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if cell.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }

    if let Some(number) = parse_number(cell) {
        return Value::Number(number);
    }

    if let Some(date) = normalize_datetime(cell) {
        return Value::String(date);
    }

    Value::String(cell.to_owned())
}

/// Infers a bracketed list. A cell that is already a JSON array of scalars is taken as it is.
/// Otherwise the text between the brackets is split on commas, each item is trimmed, one pair
/// of matching quotes around an item is removed, and the item is inferred as a scalar.
fn infer_list(cell: &str, inner: &str) -> Value {
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(cell) {
        if items.iter().all(|item| !item.is_array() && !item.is_object()) {
            return Value::Array(items);
        }
    }

    if inner.trim().is_empty() {
        return Value::Array(Vec::new());
    }

    let items = inner
        .split(',')
        .map(str::trim)
        .map(strip_matching_quotes)
        .map(|item| match item {
            Quoted::Yes(text) => Value::String(text.to_owned()),
            Quoted::No(text) => infer_scalar(text),
        })
        .collect();
    Value::Array(items)
}

/// A list item with or without the quotes that were around it.
enum Quoted<'a> {
    Yes(&'a str),
    No(&'a str),
}

/// Removes one pair of matching single or double quotes around a list item. A quoted item
/// stays a string, so `['007']` keeps its leading zeros.
fn strip_matching_quotes(item: &str) -> Quoted<'_> {
    for quote in ['"', '\''] {
        if item.len() >= 2 && item.starts_with(quote) && item.ends_with(quote) {
            return Quoted::Yes(&item[1..item.len() - 1]);
        }
    }
    Quoted::No(item)
}

/// Parses a JSON number written the way people write numbers: an optional minus, no leading
/// zeros, an optional fraction and exponent. Returns `None` for anything else, including
/// values that do not fit in an `f64`, so the cell stays a string and loses no digits.
fn parse_number(cell: &str) -> Option<Number> {
    if !is_json_number(cell) {
        return None;
    }

    if let Ok(integer) = cell.parse::<i64>() {
        return Some(Number::from(integer));
    }
    if let Ok(integer) = cell.parse::<u64>() {
        return Some(Number::from(integer));
    }

    // An integer too large for an `i64` or `u64` would lose precision as a float.
    let is_integer = !cell.contains(['.', 'e', 'E']);
    if is_integer {
        return None;
    }

    let float: f64 = cell.parse().ok()?;
    Number::from_f64(float).filter(|_| float.is_finite())
}

/// Checks the JSON number grammar (RFC 8259, section 6).
fn is_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut index = 0;

    if bytes.get(index) == Some(&b'-') {
        index += 1;
    }

    match bytes.get(index) {
        Some(b'0') => index += 1,
        Some(b'1'..=b'9') => {
            while bytes.get(index).is_some_and(u8::is_ascii_digit) {
                index += 1;
            }
        }
        _ => return false,
    }

    if bytes.get(index) == Some(&b'.') {
        index += 1;
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == start {
            return false;
        }
    }

    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(bytes.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == start {
            return false;
        }
    }

    index == bytes.len()
}

/// Normalises a date or datetime to the string Mixpanel reads as a date.
///
/// Accepts `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (taken as UTC) and RFC 3339 datetimes with a
/// fraction, `Z` or an offset, with `T`, `t` or a space between date and time. A datetime with
/// an offset is converted to UTC, and any fraction of a second is dropped because Mixpanel's
/// date type has a resolution of one second. Returns `None` when the text is not a valid date.
pub fn normalize_datetime(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let (year, month, day) = parse_date(bytes.get(..10)?)?;
    if bytes.len() == 10 {
        return Some(format!("{year:04}-{month:02}-{day:02}"));
    }

    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let (hour, minute, second) = parse_time(bytes.get(11..19)?)?;

    let mut rest = &bytes[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }

    let offset_minutes = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = two_digits(*h1, *h2)?;
            let minutes = two_digits(*m1, *m2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours) * 60 + i64::from(minutes);
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return None,
    };

    let local_seconds = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    let utc_seconds = local_seconds - offset_minutes * 60;

    let (utc_year, utc_month, utc_day) = civil_from_days(utc_seconds.div_euclid(86_400));
    let seconds_of_day = utc_seconds.rem_euclid(86_400);
    Some(format!(
        "{utc_year:04}-{utc_month:02}-{utc_day:02}T{:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    ))
}

/// Parses `YYYY-MM-DD` and checks that the day exists in that month.
fn parse_date(bytes: &[u8]) -> Option<(i64, u32, u32)> {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *bytes else {
        return None;
    };
    let year = i64::from(two_digits(y1, y2)?) * 100 + i64::from(two_digits(y3, y4)?);
    let month = two_digits(m1, m2)?;
    let day = two_digits(d1, d2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// Parses `HH:MM:SS`. A leap second (`:60`) is rejected because Mixpanel's dates cannot hold it.
fn parse_time(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let [h1, h2, b':', m1, m2, b':', s1, s2] = *bytes else {
        return None;
    };
    let (hour, minute, second) = (two_digits(h1, h2)?, two_digits(m1, m2)?, two_digits(s1, s2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((hour, minute, second))
}

fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    if tens.is_ascii_digit() && ones.is_ascii_digit() {
        Some(u32::from(tens - b'0') * 10 + u32::from(ones - b'0'))
    } else {
        None
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Counts days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil` algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts days since 1970-01-01 back to a date; the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn infer_value_table() {
        let cases: &[(&str, Option<Value>)] = &[
            ("", None),
            ("true", Some(json!(true))),
            ("FALSE", Some(json!(false))),
            ("True", Some(json!(true))),
            ("yes", Some(json!("yes"))),
            ("0", Some(json!(0))),
            ("42", Some(json!(42))),
            ("-7", Some(json!(-7))),
            ("3.25", Some(json!(3.25))),
            ("-0.5", Some(json!(-0.5))),
            ("1e6", Some(json!(1_000_000.0))),
            ("18446744073709551615", Some(json!(18_446_744_073_709_551_615_u64))),
            ("123456789012345678901234567890", Some(json!("123456789012345678901234567890"))),
            ("1e999", Some(json!("1e999"))),
            ("007", Some(json!("007"))),
            ("+5", Some(json!("+5"))),
            ("1.", Some(json!("1."))),
            (".5", Some(json!(".5"))),
            ("NaN", Some(json!("NaN"))),
            ("inf", Some(json!("inf"))),
            (" 42", Some(json!(" 42"))),
            ("2024-05-01", Some(json!("2024-05-01"))),
            ("2024-05-01T12:30:00", Some(json!("2024-05-01T12:30:00"))),
            ("2024-05-01T12:30:00Z", Some(json!("2024-05-01T12:30:00"))),
            ("2024-05-01 12:30:00.123Z", Some(json!("2024-05-01T12:30:00"))),
            ("2024-05-01T12:30:00+02:00", Some(json!("2024-05-01T10:30:00"))),
            ("2024-05-01T23:30:00-01:00", Some(json!("2024-05-02T00:30:00"))),
            ("2024-03-01T00:30:00+01:00", Some(json!("2024-02-29T23:30:00"))),
            ("2023-02-29", Some(json!("2023-02-29"))),
            ("2024-13-01", Some(json!("2024-13-01"))),
            ("2024-05-01T25:00:00", Some(json!("2024-05-01T25:00:00"))),
            ("2024-05-01T12:30:00+0200", Some(json!("2024-05-01T12:30:00+0200"))),
            ("[]", Some(json!([]))),
            ("[a, b]", Some(json!(["a", "b"]))),
            ("[1, two, true, 2024-05-01]", Some(json!([1, "two", true, "2024-05-01"]))),
            ("[\"x\", 2]", Some(json!(["x", 2]))),
            ("['007', 7]", Some(json!(["007", 7]))),
            ("[[1], 2]", Some(json!(["[1]", 2]))),
            ("[a", Some(json!("[a"))),
            ("Acme, Inc.", Some(json!("Acme, Inc."))),
        ];

        for (cell, expected) in cases {
            assert_eq!(&infer_value(cell), expected, "cell {cell:?}");
        }
    }

    #[test]
    fn datetime_round_trip_far_dates() {
        assert_eq!(normalize_datetime("0001-01-01T00:30:00+01:00").as_deref(), Some("0000-12-31T23:30:00"));
        assert_eq!(normalize_datetime("9999-12-31T23:59:59-00:30").as_deref(), Some("10000-01-01T00:29:59"));
        assert_eq!(normalize_datetime("1970-01-01T00:00:00Z").as_deref(), Some("1970-01-01T00:00:00"));
    }

    #[test]
    fn datetime_rejects_malformed() {
        for text in ["2024-05-01T", "2024-05-01X12:00:00", "2024-05-01T12:00:00.", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:60"] {
            assert_eq!(normalize_datetime(text), None, "text {text:?}");
        }
    }
}
