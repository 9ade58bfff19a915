//! The one CSV writer every download and report uses: RFC 4180 quoting, CRLF line ends, and text
//! that a spreadsheet would run as a formula defused with a leading apostrophe.
//!
//! ISPs open these files in spreadsheets, and some cells (device models, banners, feed names) come
//! from devices or senders nobody vouches for: a model named `=HYPERLINK(...)` must reach the
//! spreadsheet as text. Numbers go through [`CsvWriter::number`], which writes them as numbers
//! (a negative count is not a formula), so only text the writer did not produce itself is defused.

/// Characters that make a spreadsheet read a cell as a formula when they open it (OWASP's list:
/// `=`, `+`, `-`, `@`, tab, carriage return).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The same signs after leading whitespace (spreadsheets trim it before deciding), and their
/// full-width forms, which Japanese input methods produce and some spreadsheets fold to ASCII.
const FORMULA_AFTER_SPACE: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// Whether a spreadsheet could read `text` as a formula.
pub fn is_formula_like(text: &str) -> bool {
    text.starts_with(FORMULA_START) || text.trim_start().starts_with(FORMULA_AFTER_SPACE)
}

/// A CSV document built row by row.
#[derive(Debug, Default, Clone)]
pub struct CsvWriter {
    out: String,
    in_row: bool,
}

impl CsvWriter {
    /// An empty document.
    pub fn new() -> CsvWriter {
        CsvWriter::default()
    }

    /// A document whose first row is `columns`.
    pub fn with_header<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> CsvWriter {
        let mut csv = CsvWriter::new();
        csv.row(columns);
        csv
    }

    fn separator(&mut self) {
        if self.in_row {
            self.out.push(',');
        }
        self.in_row = true;
    }

    /// A text cell: defused if a spreadsheet could run it, quoted if it holds `,`, `"`, CR or LF.
    pub fn text(&mut self, value: &str) -> &mut CsvWriter {
        self.separator();
        let defuse = is_formula_like(value);
        let quote = value.contains([',', '"', '\n', '\r']);
        if quote {
            self.out.push('"');
        }
        if defuse {
            self.out.push('\'');
        }
        if quote {
            self.out.push_str(&value.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(value);
        }
        self
    }

    /// A number cell, written as a number (integers without a fraction). Not-a-number and the
    /// infinities are written as text.
    pub fn number(&mut self, value: f64) -> &mut CsvWriter {
        if !value.is_finite() {
            return self.text(&value.to_string());
        }
        self.separator();
        if value.fract() == 0.0 && value.abs() < 1e15 {
            self.out.push_str(&(value as i64).to_string());
        } else {
            self.out.push_str(&value.to_string());
        }
        self
    }

    /// Ends the current row (an empty row if no cell was written).
    pub fn end_row(&mut self) -> &mut CsvWriter {
        self.out.push_str("\r\n");
        self.in_row = false;
        self
    }

    /// A whole row of text cells.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut CsvWriter {
        for cell in cells {
            self.text(cell.as_ref());
        }
        self.end_row()
    }

    /// The document (a row left open is ended).
    pub fn finish(mut self) -> String {
        if self.in_row {
            self.end_row();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An RFC 4180 reader written apart from the writer, so the tests check the format rather
    /// than the writer against itself. Rows end with CRLF; a bare CR or LF outside quotes is an
    /// error here, since the writer never produces one.
    fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut cell = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        let mut at_start = true;
        while let Some(c) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        cell.push('"');
                    } else {
                        quoted = false;
                        if !matches!(chars.peek(), Some(',') | Some('\r') | None) {
                            return Err("text after a closing quote".into());
                        }
                    }
                } else {
                    cell.push(c);
                }
                continue;
            }
            match c {
                '"' if at_start => {
                    quoted = true;
                    at_start = false;
                }
                '"' => return Err("a quote inside an unquoted cell".into()),
                ',' => {
                    row.push(std::mem::take(&mut cell));
                    at_start = true;
                }
                '\r' => {
                    if chars.next() != Some('\n') {
                        return Err("CR without LF".into());
                    }
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                    at_start = true;
                }
                '\n' => return Err("LF without CR".into()),
                other => {
                    cell.push(other);
                    at_start = false;
                }
            }
        }
        if quoted {
            return Err("unterminated quote".into());
        }
        if !row.is_empty() || !cell.is_empty() {
            return Err("last row without CRLF".into());
        }
        Ok(rows)
    }

    /// What a spreadsheet runs, spelled out here apart from the writer's own lists.
    fn starts_like_a_formula(cell: &str) -> bool {
        cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
            || cell.trim_start().starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠'])
    }

    #[test]
    fn quotes_separators_and_defuses_formulas() {
        let mut csv = CsvWriter::with_header(["a", "b", "c"]);
        csv.text("x,y").text("=1+1").number(-3.0).end_row();
        csv.text("say \"hi\"").text(" @SUM(A1)").number(2.5).end_row();
        csv.text("=HYPERLINK(\"http://x\",\"y\")").text("\tcmd").text("ok").end_row();
        assert_eq!(
            csv.finish(),
            "a,b,c\r\n\"x,y\",'=1+1,-3\r\n\"say \"\"hi\"\"\",' @SUM(A1),2.5\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'\tcmd,ok\r\n"
        );
    }

    fn cell() -> impl Strategy<Value = String> {
        // Formula signs, whitespace, quotes and separators often, anything else sometimes.
        let special = prop::sample::select(vec![
            "=", "+", "-", "@", "\t", "\r", "\n", " ", ",", "\"", "'", "＝", "－", "\u{a0}", "a", "1", "é", "\r\n",
        ]);
        prop_oneof![
            prop::collection::vec(special, 0..8).prop_map(|parts| parts.concat()),
            any::<String>(),
            (prop::collection::vec(prop::sample::select(vec!["=", "-", " ", "\t", "+"]), 0..3), any::<String>())
                .prop_map(|(prefix, rest)| format!("{}{rest}", prefix.concat())),
        ]
    }

    proptest! {
        /// No text cell reads back as something a spreadsheet would run; every other value reads
        /// back exactly, and a defused one is the value behind one apostrophe.
        #[test]
        fn no_cell_reads_back_as_a_formula_and_the_rest_round_trip(
            rows in prop::collection::vec(prop::collection::vec(cell(), 1..5), 0..6),
            numbers in prop::collection::vec(any::<f64>(), 0..6),
        ) {
            let mut csv = CsvWriter::new();
            for row in &rows {
                csv.row(row);
            }
            for n in &numbers {
                csv.number(*n);
            }
            let text = csv.finish();
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;
            prop_assert_eq!(parsed.len(), rows.len() + usize::from(!numbers.is_empty()));
            for (written, read) in rows.iter().zip(&parsed) {
                prop_assert_eq!(written.len(), read.len());
                for (value, back) in written.iter().zip(read) {
                    prop_assert!(!starts_like_a_formula(back), "{:?} read back as {:?}", value, back);
                    if is_formula_like(value) {
                        prop_assert_eq!(back, &format!("'{value}"));
                    } else {
                        prop_assert_eq!(back, value);
                    }
                }
            }
            if let Some(last) = parsed.get(rows.len()) {
                for (n, back) in numbers.iter().zip(last) {
                    if n.is_finite() {
                        prop_assert_eq!(back.parse::<f64>().ok(), Some(*n));
                    } else {
                        prop_assert!(!starts_like_a_formula(back));
                    }
                }
            }
        }
    }
}
