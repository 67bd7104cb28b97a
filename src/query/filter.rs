//! The `filters` of a Stats API query: conditions `[operator, dimension, [values], {modifiers}]`
//! combined with `and`, `or` and `not`, as Plausible writes them.
//!
//! Everything a filter carries is checked here, so the engine can bind it without second
//! thoughts: the dimension exists and may be filtered, values are strings of bounded length
//! and number, regular expressions compile in the syntax that both Rust's `regex` and
//! ClickHouse's re2 accept (no look-around, no back-references, none of the Rust-only
//! extensions), and the tree is of bounded depth and size.

use regex_syntax::ast::{self, Ast};
use serde_json::Value;

use super::request::{Dimension, RequestError, Scope, err, show};

/// The most values one condition may list (`["is", "visit:country", [...]]`).
pub const MAX_VALUES: usize = 50;

/// The most characters of one value (a page path, a regular expression, ...).
pub const MAX_VALUE_CHARS: usize = 2_000;

/// The most levels of `and`, `or` and `not` inside each other.
pub const MAX_DEPTH: usize = 8;

/// The most conditions in a whole request.
pub const MAX_CONDITIONS: usize = 100;

/// How a condition compares the dimension's value with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `is`: equals one of the values.
    Is,
    /// `is_not`: equals none of the values.
    IsNot,
    /// `contains`: contains one of the values.
    Contains,
    /// `contains_not`: contains none of the values.
    ContainsNot,
    /// `matches`: matches one of the regular expressions (re2 syntax, unanchored).
    Matches,
    /// `matches_not`: matches none of the regular expressions.
    MatchesNot,
}

impl Operator {
    /// The request's name of the operator.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operator::Is => "is",
            Operator::IsNot => "is_not",
            Operator::Contains => "contains",
            Operator::ContainsNot => "contains_not",
            Operator::Matches => "matches",
            Operator::MatchesNot => "matches_not",
        }
    }

    fn from_name(name: &str) -> Option<Operator> {
        Some(match name {
            "is" => Operator::Is,
            "is_not" => Operator::IsNot,
            "contains" => Operator::Contains,
            "contains_not" => Operator::ContainsNot,
            "matches" => Operator::Matches,
            "matches_not" => Operator::MatchesNot,
            _ => return None,
        })
    }

    /// Whether the condition holds when *none* of the values match (`is_not`, `contains_not`,
    /// `matches_not`).
    pub fn is_negated(&self) -> bool {
        matches!(
            self,
            Operator::IsNot | Operator::ContainsNot | Operator::MatchesNot
        )
    }

    /// Whether the values are regular expressions.
    pub fn is_pattern(&self) -> bool {
        matches!(self, Operator::Matches | Operator::MatchesNot)
    }
}

/// One condition on one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The comparison.
    pub op: Operator,
    /// The dimension compared; never a time dimension.
    pub dimension: Dimension,
    /// The values, at least one; a row matches if *any* matches (or, negated, if none does).
    pub values: Vec<String>,
    /// The property's key when `dimension` is [`Dimension::Prop`] (`event:props:KEY`).
    pub prop_key: Option<String>,
    /// Whether letter case matters (`{"case_sensitive": false}` turns it off). True unless
    /// asked otherwise, as in Plausible; always true for `matches` (use `(?i)` instead).
    pub case_sensitive: bool,
}

/// A filter: conditions and their combinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// One condition.
    Condition(Condition),
    /// All of these (at least one). The request's top-level list is an implicit `And`.
    And(Vec<Filter>),
    /// Any of these (at least one).
    Or(Vec<Filter>),
    /// Not this.
    Not(Box<Filter>),
}

impl Filter {
    /// Every condition in the tree, depth first, in request order.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            match f {
                Filter::Condition(c) => out.push(c),
                Filter::And(fs) | Filter::Or(fs) => stack.extend(fs.iter().rev()),
                Filter::Not(f) => stack.push(f),
            }
        }
        out
    }

    /// Whether some condition of the tree is on `dimension`.
    pub fn mentions(&self, dimension: Dimension) -> bool {
        self.conditions().iter().any(|c| c.dimension == dimension)
    }

    /// The filter as the request writes it.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::Condition(c) => {
                let mut out = vec![
                    Value::from(c.op.as_str()),
                    Value::from(c.dimension.name_with(c.prop_key.as_deref())),
                    Value::from(c.values.clone()),
                ];
                if !c.case_sensitive {
                    out.push(serde_json::json!({ "case_sensitive": false }));
                }
                Value::Array(out)
            }
            Filter::And(fs) => {
                serde_json::json!(["and", fs.iter().map(Filter::to_json).collect::<Vec<_>>()])
            }
            Filter::Or(fs) => {
                serde_json::json!(["or", fs.iter().map(Filter::to_json).collect::<Vec<_>>()])
            }
            Filter::Not(f) => serde_json::json!(["not", f.to_json()]),
        }
    }
}

/// Parses the top-level `filters` list (at `#/filters`): `None` for an empty list, the one
/// filter of a list of one, and `And` of a longer list.
pub(super) fn parse_filters(value: &Value) -> Result<Option<Filter>, RequestError> {
    let path = "#/filters";
    let Value::Array(items) = value else {
        return Err(super::request::mismatch(path, "Array", value));
    };
    let mut parser = Parser { conditions: 0 };
    let mut filters = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        filters.push(parser.filter(item, &format!("{path}/{i}"), 0)?);
    }
    Ok(match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Filter::And(filters)),
    })
}

/// Walks one request's filters, counting its conditions.
struct Parser {
    conditions: usize,
}

impl Parser {
    /// One filter at `path`, `depth` levels of `and`/`or`/`not` below the top-level list.
    fn filter(&mut self, value: &Value, path: &str, depth: usize) -> Result<Filter, RequestError> {
        let invalid = |reason: &str| invalid_filter(path, value, reason);
        let Value::Array(items) = value else {
            return Err(invalid(""));
        };
        let Some(Value::String(op)) = items.first() else {
            return Err(invalid(""));
        };
        match op.as_str() {
            "and" | "or" | "not" if depth >= MAX_DEPTH => Err(invalid(&format!(
                "filters can be nested at most {MAX_DEPTH} levels deep"
            ))),
            "and" | "or" => {
                let [_, Value::Array(children)] = items.as_slice() else {
                    return Err(invalid(""));
                };
                if children.is_empty() {
                    return Err(invalid(""));
                }
                let mut out = Vec::with_capacity(children.len());
                for (i, child) in children.iter().enumerate() {
                    out.push(self.filter(child, &format!("{path}/1/{i}"), depth + 1)?);
                }
                Ok(if op == "and" {
                    Filter::And(out)
                } else {
                    Filter::Or(out)
                })
            }
            "not" => {
                let [_, child] = items.as_slice() else {
                    return Err(invalid(""));
                };
                let child = self.filter(child, &format!("{path}/1"), depth + 1)?;
                Ok(Filter::Not(Box::new(child)))
            }
            "has_done" | "has_not_done" => Err(invalid(
                "behavioral filters (has_done, has_not_done) are not supported by tally",
            )),
            name => {
                let Some(op) = Operator::from_name(name) else {
                    let reason = match name {
                        "matches_wildcard" | "matches_wildcard_not" => {
                            "wildcard filters are not supported by tally; use \"contains\" or \"matches\""
                        }
                        _ => "",
                    };
                    return Err(invalid(reason));
                };
                self.conditions += 1;
                if self.conditions > MAX_CONDITIONS {
                    return Err(err(
                        "#/filters",
                        format!("Too many filter conditions: at most {MAX_CONDITIONS}"),
                    ));
                }
                self.condition(op, items, value, path, depth)
                    .map(Filter::Condition)
            }
        }
    }

    /// `[op, dimension, values]` or `[op, dimension, values, modifiers]`.
    fn condition(
        &mut self,
        op: Operator,
        items: &[Value],
        whole: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Condition, RequestError> {
        let invalid = |reason: &str| invalid_filter(path, whole, reason);
        let (dimension, values, modifiers) = match items {
            [_, d, v] => (d, v, None),
            [_, d, v, m] => (d, v, Some(m)),
            _ => return Err(invalid("")),
        };
        let Value::String(name) = dimension else {
            return Err(invalid(""));
        };
        if name == "segment" {
            return Err(invalid("segments are not supported by tally"));
        }
        let dimension = match Dimension::from_name(name) {
            Some(d) => d,
            None => {
                let reason = super::request::unsupported_dimension(name)
                    .map(|why| format!("dimension {}: {why}", show(&Value::from(name.as_str()))))
                    .unwrap_or_default();
                return Err(invalid(&reason));
            }
        };
        if dimension.scope() == Scope::Time {
            return Err(invalid(
                "time dimensions cannot be filtered; set date_range instead",
            ));
        }
        if dimension == Dimension::Goal && !matches!(op, Operator::Is | Operator::Contains) {
            return Err(invalid(
                "event:goal can only be filtered with \"is\" or \"contains\"",
            ));
        }
        if depth > 0 && matches!(dimension, Dimension::Goal | Dimension::Hostname) {
            // Plausible's rule: goals and hostnames also decide which visits count at all
            // (conversion rates, hostname-limited entry pages), which only a condition that
            // holds for the whole query can do.
            return Err(RequestError {
                message: format!(
                    "Invalid filters. Dimension `{}` can only be filtered at the top level.",
                    dimension.as_str()
                ),
            });
        }
        let Value::Array(list) = values else {
            return Err(invalid(""));
        };
        if list.is_empty() {
            return Err(invalid("give at least one value"));
        }
        if list.len() > MAX_VALUES {
            return Err(invalid(&format!("at most {MAX_VALUES} values")));
        }
        let mut strings = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let Value::String(s) = v else {
                let reason = if dimension == Dimension::City && v.is_number() {
                    "tally stores city names, not GeoNames IDs: filter visit:city by name".into()
                } else {
                    format!("values must be strings, {} is not", show(v))
                };
                return Err(invalid(&reason));
            };
            if s.chars().count() > MAX_VALUE_CHARS {
                return Err(err(
                    &format!("{path}/2/{i}"),
                    format!("Filter value too long: at most {MAX_VALUE_CHARS} characters"),
                ));
            }
            if op.is_pattern()
                && let Err(reason) = check_pattern(s)
            {
                return Err(err(
                    &format!("{path}/2/{i}"),
                    format!(
                        "Invalid regular expression {}: {reason}",
                        show(&Value::from(s.as_str()))
                    ),
                ));
            }
            strings.push(s.clone());
        }
        if dimension == Dimension::Country
            && matches!(op, Operator::Is | Operator::IsNot)
            && strings.iter().any(|s| s.chars().count() != 2)
        {
            return Err(err(
                path,
                "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
            ));
        }
        let case_sensitive = match modifiers {
            None => true,
            Some(m) => {
                if op.is_pattern() {
                    return Err(invalid(
                        "modifiers are not allowed with pattern operators; use (?i) for case-insensitive matching",
                    ));
                }
                parse_modifiers(m).map_err(|reason| invalid(&reason))?
            }
        };
        Ok(Condition {
            op,
            dimension,
            prop_key: super::vocabulary::prop_key(name).map(str::to_string),
            values: strings,
            case_sensitive,
        })
    }
}

/// `{"case_sensitive": bool}`: the only modifier.
fn parse_modifiers(value: &Value) -> Result<bool, String> {
    let Value::Object(map) = value else {
        return Err("the modifiers must be an object such as {\"case_sensitive\": false}".into());
    };
    let mut case_sensitive = true;
    for (key, v) in map {
        match (key.as_str(), v) {
            ("case_sensitive", Value::Bool(b)) => case_sensitive = *b,
            ("case_sensitive", _) => return Err("case_sensitive must be true or false".into()),
            (other, _) => {
                return Err(format!(
                    "unknown modifier {}; the only one is case_sensitive",
                    show(&Value::from(other))
                ));
            }
        }
    }
    Ok(case_sensitive)
}

/// `#/filters/0: Invalid filter [...]`, with the reason if there is one.
fn invalid_filter(path: &str, value: &Value, reason: &str) -> RequestError {
    if reason.is_empty() {
        err(path, format!("Invalid filter {}", show(value)))
    } else {
        err(path, format!("Invalid filter {}: {reason}", show(value)))
    }
}

/// The most memory a compiled pattern may take in Rust's `regex`; a pattern that needs more
/// is too large for re2's default budget as well.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Checks that `pattern` means the same to ClickHouse (re2) as to Rust's `regex` and is of
/// reasonable size; the reason otherwise.
///
/// Rust's parser already refuses look-around and back-references, which re2 lacks too. On top
/// of that come the Rust-only forms re2 (and certainly the old re2 in ClickHouse 18.16) does
/// not know: class set operations (`[a-z&&[^aeiou]]`), the `x`, `R` and `u` flags,
/// `(?<name>..)` groups, `\<`, `\>` and `\b{start}`-style boundaries, `\u`/`\U` escapes,
/// `\p{Name=Value}` classes, and repetition counts above re2's 1000.
///
/// What a pattern that passes means is what Rust's `regex` means with
/// `dot_matches_new_line(true)`: ClickHouse turns re2's `dot_nl` on, so `.` matches line
/// breaks (`tests/filter_patterns.rs` compares both on a real server). One flaw is the
/// server's: ClickHouse before 20.5 looks for a `(?i)` pattern's literal text case-sensitively
/// first, so case-insensitive patterns miss there (fixed in 20.5).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let ast = ast::parse::ParserBuilder::new()
        .nest_limit(50)
        .build()
        .parse(pattern)
        .map_err(|e| e.kind().to_string())?;
    ast::visit(&ast, Re2Dialect)?;
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map(drop)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the pattern is too large".to_string(),
            // "regex parse error:\n    (pattern)\n    ^^^\nerror: (reason)": the reason.
            regex::Error::Syntax(s) => {
                let last = s.lines().last().unwrap_or_default();
                last.strip_prefix("error: ").unwrap_or(last).to_string()
            }
            _ => "not a regular expression".to_string(),
        })
}

/// Refuses the parts of Rust's regex syntax that re2 does not share.
struct Re2Dialect;

impl ast::Visitor for Re2Dialect {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::Flags(set) => check_flags(&set.flags),
            Ast::Group(group) => match &group.kind {
                ast::GroupKind::NonCapturing(flags) => check_flags(flags),
                ast::GroupKind::CaptureName {
                    starts_with_p: false,
                    ..
                } => Err("name groups with (?P<name>...), not (?<name>...)".into()),
                _ => Ok(()),
            },
            Ast::Assertion(a) => match a.kind {
                ast::AssertionKind::WordBoundaryStart
                | ast::AssertionKind::WordBoundaryEnd
                | ast::AssertionKind::WordBoundaryStartAngle
                | ast::AssertionKind::WordBoundaryEndAngle
                | ast::AssertionKind::WordBoundaryStartHalf
                | ast::AssertionKind::WordBoundaryEndHalf => {
                    Err("only \\b and \\B word boundaries are supported".into())
                }
                _ => Ok(()),
            },
            Ast::Literal(lit) => check_literal(lit),
            Ast::ClassUnicode(class) => check_unicode_class(class),
            Ast::Repetition(rep) => match &rep.op.kind {
                ast::RepetitionKind::Range(range) => {
                    let max = match *range {
                        ast::RepetitionRange::Exactly(n) | ast::RepetitionRange::AtLeast(n) => n,
                        ast::RepetitionRange::Bounded(m, n) => m.max(n),
                    };
                    if max > 1000 {
                        Err("repetition counts above 1000 are not supported".into())
                    } else {
                        Ok(())
                    }
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), String> {
        match item {
            ast::ClassSetItem::Literal(lit) => check_literal(lit),
            ast::ClassSetItem::Range(range) => {
                check_literal(&range.start)?;
                check_literal(&range.end)
            }
            ast::ClassSetItem::Unicode(class) => check_unicode_class(class),
            _ => Ok(()),
        }
    }

    fn visit_class_set_binary_op_pre(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), String> {
        Err("class set operations (&&, --, ~~) are not supported".into())
    }
}

fn check_flags(flags: &ast::Flags) -> Result<(), String> {
    let rust_only = flags.items.iter().any(|item| {
        matches!(
            item.kind,
            ast::FlagsItemKind::Flag(
                ast::Flag::IgnoreWhitespace | ast::Flag::CRLF | ast::Flag::Unicode
            )
        )
    });
    if rust_only {
        return Err("only the flags i, m, s and U are supported".into());
    }
    Ok(())
}

fn check_literal(lit: &ast::Literal) -> Result<(), String> {
    match lit.kind {
        ast::LiteralKind::HexFixed(
            ast::HexLiteralKind::UnicodeShort | ast::HexLiteralKind::UnicodeLong,
        )
        | ast::LiteralKind::HexBrace(
            ast::HexLiteralKind::UnicodeShort | ast::HexLiteralKind::UnicodeLong,
        ) => Err("write code points as \\x{...}, not \\u or \\U".into()),
        _ => Ok(()),
    }
}

fn check_unicode_class(class: &ast::ClassUnicode) -> Result<(), String> {
    match class.kind {
        ast::ClassUnicodeKind::NamedValue { .. } => {
            Err("Unicode classes of the form \\p{Name=Value} are not supported".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Option<Filter>, String> {
        parse_filters(&v).map_err(|e| e.message)
    }

    fn cond(op: Operator, dimension: Dimension, values: &[&str], case_sensitive: bool) -> Filter {
        Filter::Condition(Condition {
            op,
            dimension,
            prop_key: None,
            values: values.iter().map(|s| s.to_string()).collect(),
            case_sensitive,
        })
    }

    #[test]
    fn parses_conditions_and_trees() {
        let cases = [
            (json!([]), None),
            (
                json!([["is", "visit:country", ["DE", "PL"]]]),
                Some(cond(Operator::Is, Dimension::Country, &["DE", "PL"], true)),
            ),
            (
                json!([["contains", "event:page", ["/blog"], {"case_sensitive": false}]]),
                Some(cond(Operator::Contains, Dimension::Page, &["/blog"], false)),
            ),
            (
                json!([["is_not", "event:page", ["/a"], {"case_sensitive": true}]]),
                Some(cond(Operator::IsNot, Dimension::Page, &["/a"], true)),
            ),
            (
                json!([
                    ["is", "event:goal", ["Signup"]],
                    [
                        "or",
                        [
                            [
                                "and",
                                [
                                    ["is", "visit:city_name", ["Tallinn"]],
                                    ["is", "visit:country_name", ["Estonia"]]
                                ]
                            ],
                            ["not", ["matches", "event:page", ["^/user/\\d+$"]]]
                        ]
                    ]
                ]),
                Some(Filter::And(vec![
                    cond(Operator::Is, Dimension::Goal, &["Signup"], true),
                    Filter::Or(vec![
                        Filter::And(vec![
                            cond(Operator::Is, Dimension::CityName, &["Tallinn"], true),
                            cond(Operator::Is, Dimension::CountryName, &["Estonia"], true),
                        ]),
                        Filter::Not(Box::new(cond(
                            Operator::Matches,
                            Dimension::Page,
                            &["^/user/\\d+$"],
                            true,
                        ))),
                    ]),
                ])),
            ),
            // tally's own dimensions filter like any other.
            (
                json!([["contains_not", "event:title", ["Draft"]]]),
                Some(cond(
                    Operator::ContainsNot,
                    Dimension::Title,
                    &["Draft"],
                    true,
                )),
            ),
            (
                json!([["matches_not", "visit:language", ["^de"]]]),
                Some(cond(
                    Operator::MatchesNot,
                    Dimension::Language,
                    &["^de"],
                    true,
                )),
            ),
            // Countries with contains need not be whole codes; an empty value is a value.
            (
                json!([["contains", "visit:country", ["E"]]]),
                Some(cond(Operator::Contains, Dimension::Country, &["E"], true)),
            ),
            (
                json!([["is", "visit:utm_source", [""]]]),
                Some(cond(Operator::Is, Dimension::UtmSource, &[""], true)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input.clone()).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn round_trips_to_json() {
        let input = json!([
            ["is", "event:goal", ["Signup"]],
            ["or", [
                ["contains", "event:page", ["/blog"], {"case_sensitive": false}],
                ["not", ["matches", "event:page", ["^/user/\\d+$"]]]
            ]]
        ]);
        let Some(Filter::And(list)) = parse(input.clone()).unwrap() else {
            panic!("a list of two is an and");
        };
        let back: Vec<Value> = list.iter().map(Filter::to_json).collect();
        assert_eq!(Value::from(back), input);
    }

    #[test]
    fn conditions_and_mentions() {
        let f = parse(json!([
            ["is", "event:goal", ["Signup"]],
            [
                "or",
                [
                    ["is", "visit:source", ["A"]],
                    ["not", ["is", "event:page", ["/"]]]
                ]
            ]
        ]))
        .unwrap()
        .unwrap();
        let dims: Vec<Dimension> = f.conditions().iter().map(|c| c.dimension).collect();
        assert_eq!(dims, [Dimension::Goal, Dimension::Source, Dimension::Page]);
        assert!(f.mentions(Dimension::Page));
        assert!(!f.mentions(Dimension::Browser));
    }

    #[test]
    fn refuses_invalid_filters_with_plausibles_words() {
        let long = "a".repeat(MAX_VALUE_CHARS + 1);
        let many: Vec<String> = (0..=MAX_VALUES).map(|i| i.to_string()).collect();
        let cases = [
            (
                json!("foobar"),
                "#/filters: Type mismatch. Expected Array but got String.",
            ),
            (
                json!(null),
                "#/filters: Type mismatch. Expected Array but got Null.",
            ),
            (json!([[]]), "#/filters/0: Invalid filter []"),
            (json!(["is"]), "#/filters/0: Invalid filter \"is\""),
            (json!([["and"]]), "#/filters/0: Invalid filter [\"and\"]"),
            (
                json!([["and", []]]),
                "#/filters/0: Invalid filter [\"and\", []]",
            ),
            (
                json!([["or", []]]),
                "#/filters/0: Invalid filter [\"or\", []]",
            ),
            (json!([["not"]]), "#/filters/0: Invalid filter [\"not\"]"),
            (
                json!([["is_not"]]),
                "#/filters/0: Invalid filter [\"is_not\"]",
            ),
            (
                json!([["is_not", "event:name"]]),
                "#/filters/0: Invalid filter [\"is_not\", \"event:name\"]",
            ),
            (
                json!([["and", [["is", "event:name", ["a"]]], "extra"]]),
                "#/filters/0: Invalid filter [\"and\", [[\"is\", \"event:name\", [\"a\"]]], \"extra\"]",
            ),
            (
                json!([["not", ["is", "event:name", ["a"]], 1]]),
                "#/filters/0: Invalid filter [\"not\", [\"is\", \"event:name\", [\"a\"]], 1]",
            ),
            (
                json!([["is", "event:name", ["a"], {}, true]]),
                "#/filters/0: Invalid filter [\"is\", \"event:name\", [\"a\"], {}, true]",
            ),
            (
                json!([["exists?", "event:name", ["foo"]]]),
                "#/filters/0: Invalid filter [\"exists?\", \"event:name\", [\"foo\"]]",
            ),
            (
                json!([["is", "event:name", "foo"]]),
                "#/filters/0: Invalid filter [\"is\", \"event:name\", \"foo\"]",
            ),
            (
                json!([["is", "event:device", ["foo"]]]),
                "#/filters/0: Invalid filter [\"is\", \"event:device\", [\"foo\"]]",
            ),
            (
                json!([["is", "visit:name", ["foo"]]]),
                "#/filters/0: Invalid filter [\"is\", \"visit:name\", [\"foo\"]]",
            ),
            (
                json!([["is", "visit:os_version", [123]]]),
                "#/filters/0: Invalid filter [\"is\", \"visit:os_version\", [123]]: values must be strings, 123 is not",
            ),
            (
                json!([["is", "visit:city", [4347778]]]),
                "#/filters/0: Invalid filter [\"is\", \"visit:city\", [4347778]]: tally stores city names, not GeoNames IDs: filter visit:city by name",
            ),
            (
                json!([["is", "visit:country", ["USA"]]]),
                "#/filters/0: Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
            ),
            (
                json!([["is", "visit:browser", []]]),
                "#/filters/0: Invalid filter [\"is\", \"visit:browser\", []]: give at least one value",
            ),
            (
                json!([["is", "time:day", ["2024-01-01"]]]),
                "#/filters/0: Invalid filter [\"is\", \"time:day\", [\"2024-01-01\"]]: time dimensions cannot be filtered; set date_range instead",
            ),
            (
                json!([["is", "time", ["2024-01-01"]]]),
                "#/filters/0: Invalid filter [\"is\", \"time\", [\"2024-01-01\"]]: time dimensions cannot be filtered; set date_range instead",
            ),
            (
                json!([["is_not", "event:goal", ["Signup"]]]),
                "#/filters/0: Invalid filter [\"is_not\", \"event:goal\", [\"Signup\"]]: event:goal can only be filtered with \"is\" or \"contains\"",
            ),
            (
                json!([[
                    "or",
                    [
                        ["is", "event:goal", ["Signup"]],
                        ["is", "event:name", ["pageview"]]
                    ]
                ]]),
                "Invalid filters. Dimension `event:goal` can only be filtered at the top level.",
            ),
            (
                json!([["not", ["is", "event:hostname", ["a.example.org"]]]]),
                "Invalid filters. Dimension `event:hostname` can only be filtered at the top level.",
            ),
            (
                json!([["has_done", ["is", "event:name", ["Signup"]]]]),
                "#/filters/0: Invalid filter [\"has_done\", [\"is\", \"event:name\", [\"Signup\"]]]: behavioral filters (has_done, has_not_done) are not supported by tally",
            ),
            (
                json!([["has_not_done", ["is", "event:name", ["Signup"]]]]),
                "#/filters/0: Invalid filter [\"has_not_done\", [\"is\", \"event:name\", [\"Signup\"]]]: behavioral filters (has_done, has_not_done) are not supported by tally",
            ),
            (
                json!([["is", "segment", [123]]]),
                "#/filters/0: Invalid filter [\"is\", \"segment\", [123]]: segments are not supported by tally",
            ),
            (
                json!([["matches_wildcard", "event:page", ["/blog*"]]]),
                "#/filters/0: Invalid filter [\"matches_wildcard\", \"event:page\", [\"/blog*\"]]: wildcard filters are not supported by tally; use \"contains\" or \"matches\"",
            ),
            (
                json!([["is", "event:props:", ["x"]]]),
                "#/filters/0: Invalid filter [\"is\", \"event:props:\", [\"x\"]]: dimension \"event:props:\": give the property's name after event:props:",
            ),
            (
                json!([["matches", "event:hostname", ["a.example.org"], {"case_sensitive": false}]]),
                "#/filters/0: Invalid filter [\"matches\", \"event:hostname\", [\"a.example.org\"], {\"case_sensitive\": false}]: modifiers are not allowed with pattern operators; use (?i) for case-insensitive matching",
            ),
            (
                json!([["is", "event:page", ["/"], {"case_sensitive": "no"}]]),
                "#/filters/0: Invalid filter [\"is\", \"event:page\", [\"/\"], {\"case_sensitive\": \"no\"}]: case_sensitive must be true or false",
            ),
            (
                json!([["is", "event:page", ["/"], {"ignore_case": true}]]),
                "#/filters/0: Invalid filter [\"is\", \"event:page\", [\"/\"], {\"ignore_case\": true}]: unknown modifier \"ignore_case\"; the only one is case_sensitive",
            ),
            (
                json!([["is", "event:page", ["/"], false]]),
                "#/filters/0: Invalid filter [\"is\", \"event:page\", [\"/\"], false]: the modifiers must be an object such as {\"case_sensitive\": false}",
            ),
            (
                json!([["is", "event:page", ["/", long]]]),
                "#/filters/0/2/1: Filter value too long: at most 2000 characters",
            ),
            (
                json!([
                    ["is", "event:name", ["a"]],
                    [
                        "or",
                        [
                            ["is", "event:name", ["a"]],
                            ["matches", "event:page", ["(?=x)"]]
                        ]
                    ]
                ]),
                "#/filters/1/1/1/2/0: Invalid regular expression \"(?=x)\": look-around, including look-ahead and look-behind, is not supported",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse(input.clone()).unwrap_err(), message, "{input}");
        }

        // A long filter is quoted up to 200 characters.
        let message = parse(json!([["is", "event:page", many]])).unwrap_err();
        let quoted = message
            .strip_prefix("#/filters/0: Invalid filter ")
            .and_then(|m| m.strip_suffix("…: at most 50 values"))
            .unwrap_or_else(|| panic!("{message}"));
        assert!(quoted.starts_with("[\"is\", \"event:page\", [\"0\", \"1\", "));
        assert_eq!(quoted.chars().count(), 200);
    }

    #[test]
    fn limits_depth_and_size() {
        let mut deep = json!(["is", "event:name", ["a"]]);
        for _ in 0..MAX_DEPTH {
            deep = json!(["not", deep]);
        }
        assert!(
            parse(json!([deep.clone()])).is_ok(),
            "{MAX_DEPTH} levels are fine"
        );
        let too_deep = json!([["not", deep]]);
        let message = parse(too_deep).unwrap_err();
        assert!(
            message.starts_with("#/filters/0/1/1/1/1/1/1/1/1: Invalid filter [\"not\", ")
                && message.ends_with(": filters can be nested at most 8 levels deep"),
            "{message}"
        );

        let one = json!(["is", "event:name", ["a"]]);
        let fine: Vec<Value> = (0..MAX_CONDITIONS).map(|_| one.clone()).collect();
        assert!(parse(Value::from(fine)).is_ok());
        let children: Vec<Value> = (0..=MAX_CONDITIONS).map(|_| one.clone()).collect();
        assert_eq!(
            parse(json!([["or", children]])).unwrap_err(),
            "#/filters: Too many filter conditions: at most 100"
        );
    }

    #[test]
    fn patterns_in_the_shared_dialect_pass() {
        for p in [
            "^/user/\\d+$",
            "(?i)^/blog/",
            "^/(en|de)/(?P<slug>[a-z0-9-]+)$",
            "[[:alpha:]]+",
            "\\pL\\p{Greek}\\p{Lu}",
            "a{2,1000}",
            "\\x{263a}",
            "(?s:.)",
            "(?U)a+",
            "\\bword\\B",
            "",
        ] {
            assert_eq!(check_pattern(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn patterns_outside_the_shared_dialect_are_refused() {
        let cases = [
            (
                "(?=x)",
                "look-around, including look-ahead and look-behind, is not supported",
            ),
            (
                "(?<!x)y",
                "look-around, including look-ahead and look-behind, is not supported",
            ),
            ("(a)\\1", "backreferences are not supported"),
            ("(", "unclosed group"),
            (
                "[a-z&&[^aeiou]]",
                "class set operations (&&, --, ~~) are not supported",
            ),
            ("(?x) a b", "only the flags i, m, s and U are supported"),
            ("(?R)^a$", "only the flags i, m, s and U are supported"),
            ("(?-u:\\w)", "only the flags i, m, s and U are supported"),
            (
                "(?<slug>x)",
                "name groups with (?P<name>...), not (?<name>...)",
            ),
            (
                "\\<word\\>",
                "only \\b and \\B word boundaries are supported",
            ),
            (
                "\\b{start}x",
                "only \\b and \\B word boundaries are supported",
            ),
            ("\\u263a", "write code points as \\x{...}, not \\u or \\U"),
            (
                "[\\U0001F600]",
                "write code points as \\x{...}, not \\u or \\U",
            ),
            (
                "\\p{Script=Greek}",
                "Unicode classes of the form \\p{Name=Value} are not supported",
            ),
            ("a{1001}", "repetition counts above 1000 are not supported"),
            ("\\p{NotAClass}", "Unicode property not found"),
            ("(\\w{1000}){1000}", "the pattern is too large"),
        ];
        for (p, reason) in cases {
            assert_eq!(check_pattern(p), Err(reason.to_string()), "{p}");
        }
    }
}
