//! Python's `str.format`, for the file paths of ModelCheckpoint: `{epoch:02d}`,
//! `{val_loss:.2f}`, `{loss}`, with Python's format specification mini-language
//! (`[[fill]align][sign][#][0][width][,|_][.precision][type]`) for ints and floats.

/// A value a field formats: Keras gives `epoch` and `batch` as ints and the logs as floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PyValue {
    Int(i64),
    Float(f64),
}

/// Why a template could not be formatted: a field with no value (Python's `KeyError`) or a
/// template or specification Python refuses (`ValueError`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FormatError {
    Key(String),
    Value(String),
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(String),
    Field { name: &'a str, spec: &'a str },
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, FormatError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' if rest.starts_with("{{") => {
                text.push('{');
                rest = &rest[2..];
            }
            '}' if rest.starts_with("}}") => {
                text.push('}');
                rest = &rest[2..];
            }
            '{' => {
                let end = rest.find('}').ok_or_else(|| {
                    FormatError::Value("expected '}' before end of string".into())
                })?;
                let inner = &rest[1..end];
                if inner.contains('{') {
                    return Err(FormatError::Value(
                        "nested replacement fields are not supported".into(),
                    ));
                }
                let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
                if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
                    return Err(FormatError::Value(format!(
                        "a field needs a name (epoch, batch or a log key), got {{{inner}}}"
                    )));
                }
                if name.contains(['!', '.', '[']) {
                    return Err(FormatError::Value(format!(
                        "conversions, attributes and indices are not supported: {{{inner}}}"
                    )));
                }
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Field { name, spec });
                rest = &rest[end + 1..];
            }
            '}' => {
                return Err(FormatError::Value(
                    "Single '}' encountered in format string".into(),
                ))
            }
            c => {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// `template.format(**values)`: `values` gives each field's value by name.
pub(crate) fn py_format(
    template: &str,
    values: impl Fn(&str) -> Option<PyValue>,
) -> Result<String, FormatError> {
    let mut out = String::new();
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Field { name, spec } => {
                let v = values(name).ok_or_else(|| FormatError::Key(name.to_string()))?;
                out.push_str(&format_value(v, &Spec::parse(spec)?)?);
            }
        }
    }
    Ok(out)
}

/// Checks a template's syntax and specifications, without values.
pub(crate) fn py_format_check(template: &str) -> Result<(), FormatError> {
    for piece in parse(template)? {
        if let Piece::Field { spec, .. } = piece {
            Spec::parse(spec)?;
        }
    }
    Ok(())
}

/// A parsed format specification.
#[derive(Debug, Default)]
struct Spec {
    fill: char,
    align: Option<char>,
    sign: char,
    alternate: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

impl Spec {
    fn parse(spec: &str) -> Result<Spec, FormatError> {
        let bad = || FormatError::Value(format!("Invalid format specifier '{spec}'"));
        let chars: Vec<char> = spec.chars().collect();
        let mut s = Spec {
            fill: ' ',
            sign: '-',
            ..Spec::default()
        };
        let mut i = 0;
        let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
        if chars.len() >= 2 && is_align(chars[1]) {
            s.fill = chars[0];
            s.align = Some(chars[1]);
            i = 2;
        } else if chars.first().is_some_and(|&c| is_align(c)) {
            s.align = Some(chars[0]);
            i = 1;
        }
        if let Some(&c @ ('+' | '-' | ' ')) = chars.get(i) {
            s.sign = c;
            i += 1;
        }
        if chars.get(i) == Some(&'#') {
            s.alternate = true;
            i += 1;
        }
        if chars.get(i) == Some(&'0') {
            s.zero = true;
            i += 1;
        }
        let start = i;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        if i > start {
            s.width = chars[start..i]
                .iter()
                .collect::<String>()
                .parse()
                .map_err(|_| bad())?;
        }
        if let Some(&c @ (',' | '_')) = chars.get(i) {
            s.grouping = Some(c);
            i += 1;
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(FormatError::Value(
                    "Format specifier missing precision".into(),
                ));
            }
            s.precision = Some(
                chars[start..i]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .map_err(|_| bad())?,
            );
        }
        if let Some(&c) = chars.get(i) {
            if !"bcdeEfFgGnosxX%".contains(c) {
                return Err(bad());
            }
            s.kind = Some(c);
            i += 1;
        }
        if i != chars.len() {
            return Err(bad());
        }
        Ok(s)
    }
}

fn format_value(v: PyValue, spec: &Spec) -> Result<String, FormatError> {
    let (negative, body) = match (v, spec.kind) {
        (PyValue::Int(n), None | Some('d' | 'n')) => {
            if spec.precision.is_some() {
                return Err(FormatError::Value(
                    "Precision not allowed in integer format specifier".into(),
                ));
            }
            (n < 0, group(&n.unsigned_abs().to_string(), spec.grouping))
        }
        (PyValue::Int(n), Some(k @ ('x' | 'X' | 'o' | 'b'))) => {
            let m = n.unsigned_abs();
            let digits = match k {
                'x' => format!("{m:x}"),
                'X' => format!("{m:X}"),
                'o' => format!("{m:o}"),
                _ => format!("{m:b}"),
            };
            let prefix = if spec.alternate {
                format!("0{k}")
            } else {
                String::new()
            };
            (n < 0, format!("{prefix}{digits}"))
        }
        (PyValue::Int(n), Some(_)) => return format_value(PyValue::Float(n as f64), spec),
        (PyValue::Float(_), Some(k @ ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 's'))) => {
            return Err(FormatError::Value(format!(
                "Unknown format code '{k}' for object of type 'float'"
            )))
        }
        (PyValue::Float(f), kind) => (
            f.is_sign_negative() && !f.is_nan(),
            float_body(f.abs(), kind, spec),
        ),
    };
    let sign = match (negative, spec.sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    let len = sign.chars().count() + body.chars().count();
    if len >= spec.width {
        return Ok(format!("{sign}{body}"));
    }
    let pad = spec.width - len;
    let (fill, align) = match (spec.align, spec.zero) {
        (Some(a), _) => (spec.fill, a),
        (None, true) => ('0', '='),
        (None, false) => (' ', '>'),
    };
    let fills = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    Ok(match align {
        '<' => format!("{sign}{body}{}", fills(pad)),
        '^' => format!("{}{sign}{body}{}", fills(pad / 2), fills(pad - pad / 2)),
        '=' => format!("{sign}{}{body}", fills(pad)),
        _ => format!("{}{sign}{body}", fills(pad)),
    })
}

/// The digits of a float's magnitude, as Python's `format` writes them for `kind`.
fn float_body(f: f64, kind: Option<char>, spec: &Spec) -> String {
    let upper = matches!(kind, Some('F' | 'E' | 'G'));
    if !f.is_finite() {
        let s = if f.is_nan() { "nan" } else { "inf" };
        let s = if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        };
        return if kind == Some('%') {
            format!("{s}%")
        } else {
            s
        };
    }
    let text = match kind {
        Some('f' | 'F') => fixed(f, spec.precision.unwrap_or(6), spec),
        Some('%') => format!("{}%", fixed(f * 100.0, spec.precision.unwrap_or(6), spec)),
        Some('e' | 'E') => sci(f, spec.precision.unwrap_or(6), spec.alternate),
        Some('g' | 'G' | 'n') => general(f, spec.precision.unwrap_or(6), spec, false),
        _ => match spec.precision {
            None => {
                let r = crate::train::config::py_repr(f);
                match r.split_once('.') {
                    Some((int, frac)) if !r.contains('e') => {
                        format!("{}.{frac}", group(int, spec.grouping))
                    }
                    _ => r,
                }
            }
            Some(p) => general(f, p, spec, true),
        },
    };
    if upper {
        text.to_uppercase()
    } else {
        text
    }
}

/// `f` with `p` decimals, the integer part grouped.
fn fixed(f: f64, p: usize, spec: &Spec) -> String {
    let s = format!("{f:.p$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(a, b)| (a, Some(b)));
    let int = group(int, spec.grouping);
    match frac {
        Some(frac) => format!("{int}.{frac}"),
        None if spec.alternate => format!("{int}."),
        None => int,
    }
}

/// `f` in scientific notation with `p` decimals: `1.50e-04`.
fn sci(f: f64, p: usize, alternate: bool) -> String {
    let s = format!("{f:.p$e}");
    let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let mantissa = if alternate && !mantissa.contains('.') {
        format!("{mantissa}.")
    } else {
        mantissa.to_string()
    };
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Python's `g` (and, with `at_least_one_decimal`, the empty type with a precision).
fn general(f: f64, p: usize, spec: &Spec, at_least_one_decimal: bool) -> String {
    let p = p.max(1);
    let rounded = format!("{f:.*e}", p - 1);
    let exp: i64 = rounded
        .split_once('e')
        .map_or(0, |(_, e)| e.parse().unwrap_or(0));
    let strip = |s: String| -> String {
        if spec.alternate || !s.contains('.') {
            return s;
        }
        let t = s.trim_end_matches('0').trim_end_matches('.').to_string();
        if at_least_one_decimal && !t.contains('.') {
            format!("{t}.0")
        } else {
            t
        }
    };
    if -4 <= exp && exp < p as i64 {
        let decimals = (p as i64 - 1 - exp).max(0) as usize;
        strip(fixed(f, decimals, spec))
    } else {
        let s = sci(f, p - 1, spec.alternate);
        let (mantissa, e) = s.split_once('e').expect("an exponent");
        let mantissa = if spec.alternate || !mantissa.contains('.') {
            mantissa.to_string()
        } else {
            mantissa
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        };
        format!("{mantissa}e{e}")
    }
}

/// Digits with a separator every three from the right.
fn group(digits: &str, separator: Option<char>) -> String {
    let Some(sep) = separator else {
        return digits.to_string();
    };
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(template: &str, v: PyValue) -> String {
        py_format(template, |_| Some(v)).unwrap()
    }

    #[test]
    fn formats_as_python_formats() {
        use PyValue::{Float, Int};
        // Python: "{x:02d}".format(x=3) and so on.
        assert_eq!(fmt("{x:02d}", Int(3)), "03");
        assert_eq!(fmt("{x:03d}", Int(-3)), "-03");
        assert_eq!(fmt("{x}", Int(12)), "12");
        assert_eq!(fmt("{x:>5}", Int(12)), "   12");
        assert_eq!(fmt("{x:*<5}", Int(12)), "12***");
        assert_eq!(fmt("{x:^6}", Int(12)), "  12  ");
        assert_eq!(fmt("{x:,}", Int(1234567)), "1,234,567");
        assert_eq!(fmt("{x:x}", Int(255)), "ff");
        assert_eq!(fmt("{x:#x}", Int(255)), "0xff");
        assert_eq!(fmt("{x:.2f}", Int(3)), "3.00");
        assert_eq!(fmt("{x:.2f}", Float(0.28530)), "0.29");
        assert_eq!(fmt("{x:.2f}", Float(0.125)), "0.12");
        assert_eq!(fmt("{x:.4f}", Float(-0.5)), "-0.5000");
        assert_eq!(fmt("{x:+.1f}", Float(2.25)), "+2.2");
        assert_eq!(fmt("{x:08.3f}", Float(-2.71239)), "-002.712");
        assert_eq!(fmt("{x:.3e}", Float(0.000123456)), "1.235e-04");
        assert_eq!(fmt("{x:e}", Float(12345.0)), "1.234500e+04");
        assert_eq!(fmt("{x:g}", Float(0.0001)), "0.0001");
        assert_eq!(fmt("{x:g}", Float(0.00001)), "1e-05");
        assert_eq!(fmt("{x:g}", Float(123456789.0)), "1.23457e+08");
        assert_eq!(fmt("{x:.3}", Float(1.0)), "1.0");
        assert_eq!(fmt("{x:.3}", Float(0.28530001)), "0.285");
        assert_eq!(fmt("{x:.1%}", Float(0.256)), "25.6%");
        assert_eq!(fmt("{x}", Float(0.2853000164031982)), "0.2853000164031982");
        assert_eq!(fmt("{x}", Float(1e-5)), "1e-05");
        assert_eq!(fmt("{x:.2f}", Float(f64::NAN)), "nan");
        assert_eq!(fmt("{x:.2F}", Float(f64::INFINITY)), "INF");
        assert_eq!(fmt("a{{b}}c{x}", Int(1)), "a{b}c1");
    }

    #[test]
    fn refuses_what_python_refuses() {
        assert_eq!(
            py_format("{x:d}", |_| Some(PyValue::Float(1.5))),
            Err(FormatError::Value(
                "Unknown format code 'd' for object of type 'float'".into()
            ))
        );
        assert_eq!(
            py_format("{nope}", |_| None),
            Err(FormatError::Key("nope".into()))
        );
        assert!(py_format_check("{epoch:02q}").is_err());
        assert!(py_format_check("{epoch").is_err());
        assert!(py_format_check("a}b").is_err());
        assert!(py_format_check("{}").is_err());
        assert!(py_format_check("{epoch:.f}").is_err());
        assert!(py_format_check("ckpt-{epoch:02d}-{val_loss:.2f}.keras").is_ok());
    }
}
