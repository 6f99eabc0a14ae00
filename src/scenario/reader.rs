//! Reading typed values out of the spanned TOML document: every problem
//! becomes a [`ScenarioError`] pointing at its key or value.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::dist::parse_duration;
use super::error::{Locator, ScenarioError, help_with};

type Val<'i> = Spanned<DeValue<'i>>;
/// Boxed: errors are rare and [`ScenarioError`] is large.
pub(super) type Result<T> = std::result::Result<T, Box<ScenarioError>>;

/// Help for any malformed duration.
pub(super) const DURATION_HELP: &str =
    "write a humantime duration such as \"250ms\", \"2s\" or \"1m\"";

/// One table of the document, its entries in source order.
pub(super) struct Table<'t, 'i> {
    /// Dotted path (`""` for the top level, `workload`, `faults[0]`).
    pub path: String,
    /// Where the table starts (its header, or its key).
    pub span: Range<usize>,
    /// How messages name it (`[workload]`).
    pub what: String,
    entries: Vec<(&'t str, Range<usize>, &'t Val<'i>)>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn new(path: String, what: String, span: Range<usize>, t: &'t DeTable<'i>) -> Self {
        let mut entries: Vec<_> = t
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
            .collect();
        entries.sort_by_key(|e| e.1.start);
        Table {
            path,
            span,
            what,
            entries,
        }
    }

    /// Full dotted path of `name` in this table.
    pub fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub fn get(&self, name: &str) -> Option<&'t Val<'i>> {
        self.entries.iter().find(|e| e.0 == name).map(|e| e.2)
    }

    /// Keys and their spans, in source order.
    pub fn keys(&self) -> impl Iterator<Item = (&'t str, Range<usize>)> + '_ {
        self.entries.iter().map(|e| (e.0, e.1.clone()))
    }
}

/// Reads values out of tables, turning every problem into a located error.
pub(super) struct Ctx<'a> {
    pub loc: Locator<'a>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    pub fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Box<ScenarioError> {
        Box::new(self.loc.at(span, Some(key), message, help))
    }

    /// Every key of `t` must be in `valid`.
    pub fn check_keys(&self, t: &Table<'_, '_>, valid: &[&str]) -> Result<()> {
        for (k, span) in t.keys() {
            if !valid.contains(&k) {
                return Err(self.err(
                    span,
                    &t.key(k),
                    format!("unknown key `{k}` in {}", t.what),
                    Some(help_with(k, valid, "valid keys")),
                ));
            }
        }
        Ok(())
    }

    /// A missing required key, reported at the table.
    pub fn missing(&self, t: &Table<'_, '_>, name: &str, help: &str) -> Box<ScenarioError> {
        let message = if t.path.is_empty() {
            format!("missing required key `{name}`")
        } else {
            format!("missing required key `{name}` in {}", t.what)
        };
        self.err(
            t.span.clone(),
            &t.key(name),
            message,
            Some(help.to_string()),
        )
    }

    fn wrong_type(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        v: &Val<'_>,
        expected: &str,
        example: &str,
    ) -> Box<ScenarioError> {
        let text: String = self
            .loc
            .src
            .get(v.span())
            .unwrap_or("")
            .chars()
            .take(40)
            .collect();
        self.err(
            v.span(),
            &t.key(name),
            format!(
                "expected {expected}, found {} {text}",
                v.get_ref().type_str()
            ),
            Some(format!("write e.g. `{name} = {example}`")),
        )
    }

    /// Replace `${NAME}` in `s` from the environment.
    pub fn subst(&self, s: &str, span: Range<usize>, key: &str) -> Result<String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.err(
                    span,
                    key,
                    format!("unterminated `${{` in \"{s}\""),
                    Some("write ${NAME} to insert the environment variable NAME".into()),
                ));
            };
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(
                    span,
                    key,
                    format!("invalid environment variable name `{name}` in \"{s}\""),
                    Some("names are letters, digits and `_`, as in ${REDIS_PASSWORD}".into()),
                ));
            }
            match (self.env)(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(self.err(
                        span,
                        key,
                        format!("environment variable `{name}` is not set"),
                        Some(format!(
                            "set it (export {name}=...) or write the value directly"
                        )),
                    ));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A string value, `${VAR}` replaced.
    pub fn string(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        example: &str,
    ) -> Result<Option<(String, Range<usize>)>> {
        let Some(v) = t.get(name) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::String(s) => Ok(Some((self.subst(s, v.span(), &t.key(name))?, v.span()))),
            _ => Err(self.wrong_type(t, name, v, "a string", example)),
        }
    }

    /// A humantime duration string.
    pub fn duration(
        &self,
        t: &Table<'_, '_>,
        name: &str,
    ) -> Result<Option<(Duration, Range<usize>)>> {
        let Some((s, span)) = self.string(t, name, "\"2s\"")? else {
            return Ok(None);
        };
        match parse_duration(&s) {
            Ok(d) => Ok(Some((d, span))),
            Err(e) => Err(self.err(
                span,
                &t.key(name),
                format!("invalid duration `{s}`: {e}"),
                Some(DURATION_HELP.into()),
            )),
        }
    }

    /// A duration that must be > 0.
    pub fn positive_duration(
        &self,
        t: &Table<'_, '_>,
        name: &str,
    ) -> Result<Option<(Duration, Range<usize>)>> {
        let d = self.duration(t, name)?;
        if let Some((v, span)) = &d
            && v.is_zero()
        {
            return Err(self.err(
                span.clone(),
                &t.key(name),
                format!("`{name}` must be > 0"),
                Some(DURATION_HELP.into()),
            ));
        }
        Ok(d)
    }

    /// An integer value.
    pub fn int(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        example: &str,
    ) -> Result<Option<(i128, Range<usize>)>> {
        let Some(v) = t.get(name) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Ok(Some((n, v.span()))),
                Err(_) => Err(self.wrong_type(t, name, v, "an integer", example)),
            },
            _ => Err(self.wrong_type(t, name, v, "an integer", example)),
        }
    }

    /// An integer in `lo..=hi`.
    pub fn int_in(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        lo: i128,
        hi: i128,
        example: &str,
    ) -> Result<Option<(i128, Range<usize>)>> {
        let n = self.int(t, name, example)?;
        if let Some((v, span)) = &n
            && !(lo..=hi).contains(v)
        {
            let range = if hi >= i128::from(u64::MAX) {
                format!(">= {lo}")
            } else {
                format!("in {lo}..={hi}")
            };
            return Err(self.err(
                span.clone(),
                &t.key(name),
                format!("`{name}` must be {range}, found {v}"),
                Some(format!("write e.g. `{name} = {example}`")),
            ));
        }
        Ok(n)
    }

    /// A number (float or integer).
    pub fn float(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        example: &str,
    ) -> Result<Option<(f64, Range<usize>)>> {
        let Some(v) = t.get(name) else {
            return Ok(None);
        };
        let x = match v.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        };
        match x {
            Some(x) => Ok(Some((x, v.span()))),
            None => Err(self.wrong_type(t, name, v, "a number", example)),
        }
    }

    /// A number that must satisfy `ok`, described by `rule` (`in 0..=1`).
    pub fn float_where(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        example: &str,
        rule: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Option<f64>> {
        match self.float(t, name, example)? {
            Some((x, span)) if !ok(x) => Err(self.err(
                span,
                &t.key(name),
                format!("`{name}` must be {rule}, found {x}"),
                Some(format!("write e.g. `{name} = {example}`")),
            )),
            x => Ok(x.map(|x| x.0)),
        }
    }

    /// An array of strings, `${VAR}` replaced in each.
    pub fn strings(
        &self,
        t: &Table<'_, '_>,
        name: &str,
        example: &str,
    ) -> Result<Option<(Vec<String>, Range<usize>)>> {
        let Some(v) = t.get(name) else {
            return Ok(None);
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(t, name, v, "an array of strings", example));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(self.subst(s, item.span(), &t.key(name))?),
                _ => return Err(self.wrong_type(t, name, item, "a string", example)),
            }
        }
        Ok(Some((out, v.span())))
    }

    /// A sub-table (`[backend]`), if present.
    pub fn section<'t, 'i>(
        &self,
        root: &Table<'t, 'i>,
        name: &str,
    ) -> Result<Option<Table<'t, 'i>>> {
        let Some(v) = root.get(name) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Table(t) => Ok(Some(Table::new(
                name.to_string(),
                format!("[{name}]"),
                v.span(),
                t,
            ))),
            _ => Err(self.err(
                v.span(),
                name,
                format!(
                    "expected a table [{name}], found {}",
                    v.get_ref().type_str()
                ),
                Some(format!(
                    "write `[{name}]` on a line of its own, then its keys"
                )),
            )),
        }
    }
}
