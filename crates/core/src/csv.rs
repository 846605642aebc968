//! CSV fields for every export (the admin's audit log and usage, the SEO studio's projects):
//! quoted per RFC 4180, and defused so a spreadsheet opening the file does not run a value as a
//! formula.

/// Characters that make a spreadsheet read a cell as a formula (or, for tab and carriage
/// return, that some spreadsheets strip before doing so).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One field. A value starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'`, which spreadsheets show as text (OWASP's advice against CSV injection): a
/// `User-Agent: =HYPERLINK(…)` recorded at sign-in must not become a live link in the
/// admin's spreadsheet. A field holding a comma, quote or line break is quoted, its quotes
/// doubled.
pub fn field(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    push_field(&mut out, text);
    out
}

/// [`field`], appended to `out`.
pub fn push_field(out: &mut String, text: &str) {
    let defuse = text.starts_with(FORMULA_STARTS);
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        if defuse {
            out.push('\'');
        }
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        if defuse {
            out.push('\'');
        }
        out.push_str(text);
    }
}

/// One record: the fields, each through [`push_field`], separated by commas and ended by
/// CRLF as RFC 4180 says.
pub fn push_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, text) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, text);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            let out = field(formula);
            assert!(out.trim_start_matches('"').starts_with('\''), "{out:?}");
        }
        assert_eq!(
            field("=HYPERLINK(\"http://evil\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\""
        );
        assert_eq!(field("a=b"), "a=b", "only a leading sign is a formula");
    }

    #[test]
    fn rows_end_with_crlf() {
        let mut out = String::new();
        push_row(&mut out, ["a", "b,c", "=x"]);
        assert_eq!(out, "a,\"b,c\",'=x\r\n");
    }
}
