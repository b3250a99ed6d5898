//! Reading group profile rows from an RFC 4180 CSV file.
//!
//! The `csv` crate splits the file into records. It is lenient by design: a stray quote is kept
//! as text and a field whose quote never closes runs to the end of the file. An import must not
//! send such values silently, so every record is also checked against RFC 4180's quoting rules
//! on its raw bytes, then for its field count and for UTF-8. A record that fails a check becomes
//! a [`Rejection`] with its line number and reason, and reading goes on with the next record.

use std::collections::HashSet;

use csv::ByteRecord;
use serde_json::{Map, Value};

use crate::infer::infer_value;

/// The UTF-8 byte order mark that spreadsheet programs write at the start of a CSV file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header row of a group profile CSV file.
#[derive(Debug, Clone)]
pub struct Header {
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Index of the group id column.
    pub id_index: usize,
}

/// One valid row: the profile it updates and the properties to `$set`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Line number of the row's first line in the file, counting from 1.
    pub line: u64,
    /// The group id, taken from the id column as text.
    pub group_id: String,
    /// Inferred property values; empty cells are absent.
    pub properties: Map<String, Value>,
}

/// A row that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Line number of the row's first line in the file, counting from 1.
    pub line: u64,
    /// The problem with the row and how to fix it.
    pub reason: String,
}

/// The outcome of reading one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A row to send.
    Row(GroupRow),
    /// A row to report and skip.
    Rejected(Rejection),
}

/// An error that stops the import before any row is read.
#[derive(Debug, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderError {}

/// Rows of a CSV file held in memory, read one record at a time.
pub struct CsvRows<'a> {
    data: &'a [u8],
    reader: csv::Reader<&'a [u8]>,
    header: Header,
    record: ByteRecord,
    lines: LineCounter,
}

/// Counts line breaks up to a byte offset, treating `\r\n`, `\r` and `\n` each as one. The
/// `csv` crate's own line numbers skip blank lines, so line numbers come from here.
struct LineCounter {
    offset: usize,
    line: u64,
    previous: u8,
}

impl LineCounter {
    /// Advances to `offset` and returns the line number there, counting from 1.
    fn line_at(&mut self, data: &[u8], offset: usize) -> u64 {
        for &byte in &data[self.offset..offset] {
            if byte == b'\r' || (byte == b'\n' && self.previous != b'\r') {
                self.line += 1;
            }
            self.previous = byte;
        }
        self.offset = offset;
        self.line
    }
}

impl<'a> CsvRows<'a> {
    /// Reads the header row of `data` and finds the id column: `id_column` when given,
    /// otherwise the column named like `group_key`.
    ///
    /// # Errors
    /// A [`HeaderError`] when the file has no header row, the header is not UTF-8, a column
    /// name is empty or repeated, or the id column is not in the header.
    pub fn new(data: &'a [u8], group_key: &str, id_column: Option<&str>) -> Result<Self, HeaderError> {
        let data = data.strip_prefix(UTF8_BOM).unwrap_or(data);

        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(data);
        let mut record = ByteRecord::new();

        let has_header = reader
            .read_byte_record(&mut record)
            .map_err(|error| HeaderError(format!("failed to read the header row: {error}")))?;
        if !has_header {
            return Err(HeaderError(
                "the file is empty; the first row must name the columns, for example company_id,name,plan".to_owned(),
            ));
        }

        let header_end = reader.position().byte() as usize;
        let header_raw = &data[..header_end];
        let blank = header_raw.iter().take_while(|byte| matches!(byte, b'\r' | b'\n')).count();
        if let Some(problem) = check_quoting(&header_raw[blank..]) {
            return Err(HeaderError(format!("invalid header row: {problem}")));
        }

        let columns = parse_columns(&record)?;
        let id_name = id_column.unwrap_or(group_key);
        let Some(id_index) = columns.iter().position(|name| name == id_name) else {
            let hint = if id_column.is_some() {
                "pass the name of an existing column to --id-column"
            } else {
                "name the id column after the group key, or pass --id-column"
            };
            return Err(HeaderError(format!(
                "the group id column {id_name:?} is not in the header (columns: {}); {hint}",
                columns.join(", ")
            )));
        };

        Ok(CsvRows {
            data,
            reader,
            header: Header { columns, id_index },
            record,
            lines: LineCounter {
                offset: 0,
                line: 1,
                previous: 0,
            },
        })
    }

    /// Returns the number of bytes read so far, for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// Returns the line the next record starts on, counting from 1.
    pub fn next_line(&mut self) -> u64 {
        let offset = self.reader.position().byte() as usize;
        let blank = self.data[offset..].iter().take_while(|byte| matches!(byte, b'\r' | b'\n')).count();
        self.lines.line_at(self.data, offset + blank)
    }

    /// Returns the size of the file in bytes, without a byte order mark.
    pub fn total_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    fn outcome(&self, line: u64, raw: &[u8]) -> RowOutcome {
        let reject = |reason: String| RowOutcome::Rejected(Rejection { line, reason });

        if let Some(problem) = check_quoting(raw) {
            let last_line = line + count_line_breaks(raw.trim_ascii_end());
            let span = if last_line > line {
                format!(" (the record runs to line {last_line})")
            } else {
                String::new()
            };
            return reject(format!("{problem}{span}"));
        }

        let columns = &self.header.columns;
        if self.record.len() != columns.len() {
            return reject(format!(
                "the row has {} fields but the header has {} columns; quote fields that contain commas",
                self.record.len(),
                columns.len()
            ));
        }

        let mut cells = Vec::with_capacity(columns.len());
        for (index, field) in self.record.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(cell) => cells.push(cell),
                Err(error) => {
                    return reject(format!(
                        "invalid UTF-8 in column {:?} at byte {} of the field; save the file as UTF-8",
                        columns[index],
                        error.valid_up_to()
                    ));
                }
            }
        }

        let group_id = cells[self.header.id_index];
        if group_id.is_empty() {
            return reject(format!(
                "the group id column {:?} is empty; every row needs a group id",
                columns[self.header.id_index]
            ));
        }

        let properties = columns
            .iter()
            .zip(&cells)
            .enumerate()
            .filter(|(index, _)| *index != self.header.id_index)
            .filter_map(|(_, (name, cell))| infer_value(cell).map(|value| (name.clone(), value)))
            .collect();

        RowOutcome::Row(GroupRow {
            line,
            group_id: group_id.to_owned(),
            properties,
        })
    }
}

impl Iterator for CsvRows<'_> {
    type Item = RowOutcome;

    fn next(&mut self) -> Option<RowOutcome> {
        let start = self.reader.position().byte() as usize;

        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            // Reading from memory raises no I/O errors, and a flexible reader raises no
            // field-count errors, so this arm only guards against a future change of the crate.
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                return Some(RowOutcome::Rejected(Rejection {
                    line,
                    reason: format!("failed to parse the row: {error}"),
                }));
            }
        }

        let end = self.reader.position().byte() as usize;
        let raw = &self.data[start..end];
        let blank = raw.iter().take_while(|byte| matches!(byte, b'\r' | b'\n')).count();
        let line = self.lines.line_at(self.data, start + blank);
        Some(self.outcome(line, &raw[blank..]))
    }
}

/// Checks the header names: UTF-8, not empty, each used once.
fn parse_columns(record: &ByteRecord) -> Result<Vec<String>, HeaderError> {
    let mut columns = Vec::with_capacity(record.len());
    let mut seen = HashSet::new();

    for (index, field) in record.iter().enumerate() {
        let number = index + 1;
        let name = std::str::from_utf8(field).map_err(|_| {
            HeaderError(format!("the name of column {number} in the header is not valid UTF-8; save the file as UTF-8"))
        })?;
        if name.is_empty() {
            return Err(HeaderError(format!(
                "column {number} in the header has no name; give every column a property name"
            )));
        }
        if !seen.insert(name) {
            return Err(HeaderError(format!(
                "the header names column {name:?} twice; give every column a distinct property name"
            )));
        }
        columns.push(name.to_owned());
    }

    Ok(columns)
}

/// Quoting state while scanning one raw record.
#[derive(Clone, Copy)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Checks the raw bytes of one record against RFC 4180's quoting rules: a field that contains a
/// quote must be quoted as a whole, a quote inside it is written twice, and nothing may follow
/// the closing quote but a comma or the line break. `raw` starts at the record's first byte.
/// Returns the problem, or `None` when the
/// record is well formed.
fn check_quoting(raw: &[u8]) -> Option<String> {
    let mut state = QuoteState::FieldStart;
    let mut field = 1;

    for &byte in raw {
        state = match (state, byte) {
            (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => QuoteState::Quoted,
            (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
            (_, b'\r' | b'\n') => return None,
            (_, b',') => {
                field += 1;
                QuoteState::FieldStart
            }
            (QuoteState::FieldStart, b'"') => QuoteState::Quoted,
            (QuoteState::FieldStart | QuoteState::Unquoted, _) if byte != b'"' => QuoteState::Unquoted,
            (QuoteState::FieldStart | QuoteState::Unquoted, _) => {
                return Some(format!(
                    "bad quoting in field {field}: a quote inside an unquoted field; \
                     quote the whole field and write an inner quote twice (\"\")"
                ));
            }
            (QuoteState::QuoteInQuoted, _) => {
                return Some(format!(
                    "bad quoting in field {field}: text after the closing quote; \
                     write a quote inside a quoted field twice (\"\")"
                ));
            }
        };
    }

    match state {
        QuoteState::Quoted => Some(format!(
            "bad quoting in field {field}: the quoted field is not closed before the end of the file"
        )),
        _ => None,
    }
}

fn count_line_breaks(raw: &[u8]) -> u64 {
    let mut counter = LineCounter {
        offset: 0,
        line: 0,
        previous: 0,
    };
    counter.line_at(raw, raw.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(data: &[u8]) -> Vec<RowOutcome> {
        CsvRows::new(data, "company_id", None).expect("valid header").collect()
    }

    fn rejection(outcome: &RowOutcome) -> &Rejection {
        match outcome {
            RowOutcome::Rejected(rejection) => rejection,
            RowOutcome::Row(row) => panic!("expected a rejection, got row {row:?}"),
        }
    }

    fn row(outcome: &RowOutcome) -> &GroupRow {
        match outcome {
            RowOutcome::Row(row) => row,
            RowOutcome::Rejected(rejection) => panic!("expected a row, got {rejection:?}"),
        }
    }

    #[test]
    fn rows_valid_with_inferred_types() {
        let outcomes = read(b"company_id,name,seats,active,tags\nacme,Acme Corp,120,true,\"[a, b]\"\nglobex,\"Globex, Inc.\",,false,\n");

        assert_eq!(outcomes.len(), 2);
        let acme = row(&outcomes[0]);
        assert_eq!(acme.line, 2);
        assert_eq!(acme.group_id, "acme");
        assert_eq!(Value::Object(acme.properties.clone()), json!({"name": "Acme Corp", "seats": 120, "active": true, "tags": ["a", "b"]}));

        let globex = row(&outcomes[1]);
        assert_eq!(globex.line, 3);
        assert_eq!(Value::Object(globex.properties.clone()), json!({"name": "Globex, Inc.", "active": false}));
    }

    #[test]
    fn rows_multiline_field_keeps_line_numbers() {
        let outcomes = read(b"company_id,notes\nacme,\"two\nlines\"\nglobex,x\n");

        assert_eq!(row(&outcomes[0]).properties["notes"], json!("two\nlines"));
        assert_eq!(row(&outcomes[1]).line, 4);
    }

    #[test]
    fn rows_crlf_and_bom() {
        let outcomes = read(b"\xEF\xBB\xBFcompany_id,plan\r\nacme,pro\r\nglobex,free\r\n");

        assert_eq!(outcomes.len(), 2);
        assert_eq!(row(&outcomes[1]).group_id, "globex");
        assert_eq!(row(&outcomes[1]).line, 3);
    }

    #[test]
    fn rows_wrong_field_count() {
        let outcomes = read(b"company_id,plan\nacme,pro,extra\nglobex\ninitech,free\n");

        assert_eq!(rejection(&outcomes[0]).line, 2);
        assert!(rejection(&outcomes[0]).reason.contains("3 fields but the header has 2"), "{:?}", outcomes[0]);
        assert_eq!(rejection(&outcomes[1]).line, 3);
        assert!(rejection(&outcomes[1]).reason.contains("1 fields"), "{:?}", outcomes[1]);
        assert_eq!(row(&outcomes[2]).group_id, "initech");
    }

    #[test]
    fn rows_quote_inside_unquoted_field() {
        let outcomes = read(b"company_id,name\nacme,Acme \"Corp\"\nglobex,Globex\n");

        assert_eq!(rejection(&outcomes[0]).line, 2);
        assert!(rejection(&outcomes[0]).reason.contains("quote inside an unquoted field"), "{:?}", outcomes[0]);
        assert_eq!(row(&outcomes[1]).group_id, "globex");
    }

    #[test]
    fn rows_text_after_closing_quote() {
        let outcomes = read(b"company_id,name\nacme,\"Acme \"Corp\"\nglobex,Globex\n");

        assert!(rejection(&outcomes[0]).reason.contains("text after the closing quote"), "{:?}", outcomes[0]);
        assert!(rejection(&outcomes[0]).reason.contains("field 2"), "{:?}", outcomes[0]);
        assert_eq!(row(&outcomes[1]).group_id, "globex");
    }

    #[test]
    fn rows_unclosed_quote_at_end() {
        let outcomes = read(b"company_id,name\nacme,Acme\nglobex,\"Globex\ninitech,Initech\n");

        assert_eq!(row(&outcomes[0]).group_id, "acme");
        let unclosed = rejection(&outcomes[1]);
        assert_eq!(unclosed.line, 3);
        assert!(unclosed.reason.contains("not closed"), "{unclosed:?}");
        assert!(unclosed.reason.contains("runs to line 4"), "{unclosed:?}");
        assert_eq!(outcomes.len(), 2);
    }

    #[test]
    fn rows_invalid_utf8() {
        let outcomes = read(b"company_id,name\nacme,Acm\xE9\nglobex,Globex\n");

        assert_eq!(rejection(&outcomes[0]).line, 2);
        assert!(rejection(&outcomes[0]).reason.contains("invalid UTF-8 in column \"name\" at byte 3"), "{:?}", outcomes[0]);
        assert_eq!(row(&outcomes[1]).group_id, "globex");
    }

    #[test]
    fn rows_empty_group_id() {
        let outcomes = read(b"company_id,name\n,Nobody\n");

        assert!(rejection(&outcomes[0]).reason.contains("group id column \"company_id\" is empty"), "{:?}", outcomes[0]);
    }

    #[test]
    fn rows_blank_lines_skipped() {
        let outcomes = read(b"company_id,name\n\nacme,Acme\n\n\nglobex,Globex\n");

        assert_eq!(outcomes.len(), 2);
        assert_eq!(row(&outcomes[0]).line, 3);
        assert_eq!(row(&outcomes[1]).line, 6);
    }

    #[test]
    fn header_id_column_option() {
        let rows = CsvRows::new(b"account,name\nacme,Acme\n", "company_id", Some("account")).expect("valid header");
        assert_eq!(rows.header.id_index, 0);

        let error = CsvRows::new(b"account,name\n", "company_id", None).err().expect("missing id column");
        assert!(error.0.contains("\"company_id\" is not in the header (columns: account, name)"), "{error}");
    }

    #[test]
    fn header_errors() {
        let empty = CsvRows::new(b"", "company_id", None).err().expect("empty file");
        assert!(empty.0.contains("the file is empty"), "{empty}");

        let duplicate = CsvRows::new(b"company_id,plan,plan\n", "company_id", None).err().expect("duplicate");
        assert!(duplicate.0.contains("\"plan\" twice"), "{duplicate}");

        let unnamed = CsvRows::new(b"company_id,,plan\n", "company_id", None).err().expect("unnamed");
        assert!(unnamed.0.contains("column 2 in the header has no name"), "{unnamed}");

        let not_utf8 = CsvRows::new(b"company_id,pl\xFFn\n", "company_id", None).err().expect("not UTF-8");
        assert!(not_utf8.0.contains("column 2 in the header is not valid UTF-8"), "{not_utf8}");
    }
}
