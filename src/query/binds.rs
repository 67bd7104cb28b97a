//! Values bound to the statements the engine builds. The `clickhouse` crate renders `?` binds
//! as quoted literals on the client (ClickHouse 18.16 has no server-side parameters), so no
//! request value is ever formatted into SQL by hand.
//!
//! Statements are assembled from pieces, some used twice, so values are not bound in the order
//! they are added: [`Params::add`] hands out a placeholder token, and [`Params::finish`] turns
//! the finished text's tokens into `?` and lists the values in the order the tokens appear.

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A 32-bit number.
    U32(u32),
    /// A 64-bit number.
    U64(u64),
}

/// The values of one statement, in the order of its `?`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Binds(Vec<Value>);

impl Binds {
    /// Binds every value to `query`, in order.
    pub fn apply(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for v in &self.0 {
            query = match v {
                Value::Str(s) => query.bind(s.as_str()),
                Value::U32(n) => query.bind(*n),
                Value::U64(n) => query.bind(*n),
            };
        }
        query
    }

    /// The values, in order.
    pub fn values(&self) -> &[Value] {
        &self.0
    }
}

/// Values collected while a statement is assembled.
#[derive(Debug, Default)]
pub struct Params(Vec<Value>);

/// Marks a placeholder token; a control character no SQL the engine writes contains, and no
/// request value ever reaches the text.
const MARK: char = '\u{1}';

impl Params {
    /// Stores `v` and returns the token that stands for it in the text.
    pub fn add(&mut self, v: Value) -> String {
        self.0.push(v);
        format!("{MARK}{}{MARK}", self.0.len() - 1)
    }

    /// The text with every token replaced by `?`, and the values in the order of the `?`s (a
    /// token used twice binds its value twice).
    pub fn finish(&self, sql: &str) -> (String, Binds) {
        let mut out = String::with_capacity(sql.len());
        let mut binds = Vec::new();
        let mut rest = sql;
        while let Some(start) = rest.find(MARK) {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find(MARK).unwrap_or(after.len());
            if let Some(v) = after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|i| self.0.get(i))
            {
                out.push('?');
                binds.push(v.clone());
            }
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push_str(rest);
        (out, Binds(binds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_become_binds_in_text_order() {
        let mut p = Params::default();
        let a = p.add(Value::Str("a".into()));
        let b = p.add(Value::U32(7));
        let (sql, binds) = p.finish(&format!("SELECT {b}, {a} WHERE x = {a}"));
        assert_eq!(sql, "SELECT ?, ? WHERE x = ?");
        assert_eq!(
            binds.values(),
            [
                Value::U32(7),
                Value::Str("a".into()),
                Value::Str("a".into())
            ]
        );
    }
}
