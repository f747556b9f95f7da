//! Property tests for the SQL sanitizer: secrets in literals and comments never leak, any input is
//! handled without panicking, output is bounded, and sanitizing is idempotent.

use proptest::prelude::*;
use tracewire_shared::sanitize::sql::{Dialect, MAX_SUMMARY_LEN, analyze, analyze_with_limit};

const MARK: &str = "SECRETMARK";
const NUM_MARK: &str = "987654321";

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::Postgres),
        Just(Dialect::MySql),
        Just(Dialect::Sqlite),
        Just(Dialect::Other)
    ]
}

/// Text that may surround the marker inside a literal or comment: quotes, backslashes, comment
/// openers, newlines, unicode — escaped afterwards as each literal form requires.
fn filler() -> BoxedStrategy<String> {
    proptest::string::string_regex("[a-z0-9 '\"\\\\$*/#\\-\\n\\t;(),.é😀]{0,12}")
        .unwrap()
        .boxed()
}

/// A literal or comment carrying the marker, well-formed for `d`.
fn secret_fragment(d: Dialect) -> BoxedStrategy<String> {
    let text = (filler(), filler())
        .prop_map(|(a, b)| format!("{a}{MARK}{b}"))
        .boxed();
    let mut options: Vec<BoxedStrategy<String>> = vec![
        // '…' with quotes doubled (and backslashes doubled where they escape).
        text.clone()
            .prop_map(move |t| {
                let t = if d == Dialect::MySql {
                    t.replace('\\', "\\\\")
                } else {
                    t
                };
                format!("'{}'", t.replace('\'', "''"))
            })
            .boxed(),
        // -- line comment.
        text.clone()
            .prop_map(|t| format!("-- {}\n", t.replace('\n', " ")))
            .boxed(),
        // /* block comment */ without a premature terminator or nested opener.
        text.clone()
            .prop_map(|t| format!("/* {} */", t.replace("*/", "* /").replace("/*", "/ *")))
            .boxed(),
        // Numbers, signed or not, with the numeric marker.
        prop_oneof![
            Just(NUM_MARK.to_string()),
            Just(format!("-{NUM_MARK}")),
            Just(format!("+{NUM_MARK}.5e-3")),
            Just(format!("0x{NUM_MARK}ABC")),
        ]
        .boxed(),
        // Prefixed strings.
        text.clone()
            .prop_map(|t| format!("X'{}'", t.replace('\'', "''").replace('\\', "")))
            .boxed(),
    ];
    match d {
        Dialect::Postgres => {
            options.push(
                text.clone()
                    .prop_map(|t| format!("$tag${}$tag$", t.replace("$tag$", "")))
                    .boxed(),
            );
            options.push(
                text.clone()
                    .prop_map(|t| format!("$${}$$", t.replace('$', "")))
                    .boxed(),
            );
            options.push(
                text.clone()
                    .prop_map(|t| format!("E'{}'", t.replace('\\', "\\\\").replace('\'', "\\'")))
                    .boxed(),
            );
        }
        Dialect::MySql => {
            options.push(
                text.clone()
                    .prop_map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
                    .boxed(),
            );
            options.push(
                text.clone()
                    .prop_map(|t| format!("# {}\n", t.replace('\n', " ")))
                    .boxed(),
            );
        }
        _ => {
            options.push(
                text.prop_map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                    .boxed(),
            );
        }
    }
    proptest::strategy::Union::new(options).boxed()
}

/// SQL-shaped text with no marker in it.
fn plain_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "SELECT",
            "FROM",
            "WHERE",
            "INSERT INTO",
            "VALUES",
            "UPDATE",
            "SET",
            "DELETE",
            "JOIN",
            "IN",
            "AND",
            "users",
            "orders o",
            "t.id",
            "name",
            "=",
            ",",
            "(",
            ")",
            "*",
            ";",
            "$1",
            "?",
            ":id",
            "<>",
            "+",
            "-",
        ])
        .prop_map(str::to_string),
        Just(" ".to_string()),
        Just("\n".to_string()),
    ]
}

fn statement_with_secrets(d: Dialect) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![3 => plain_fragment(), 1 => secret_fragment(d)],
        1..24,
    )
    .prop_map(|parts| parts.join(" "))
}

fn dialect_and_statement() -> impl Strategy<Value = (Dialect, String)> {
    dialect().prop_flat_map(|d| (Just(d), statement_with_secrets(d)))
}

fn assert_no_leak(d: Dialect, q: &str) {
    let a = analyze(q, d);
    for mark in [MARK, NUM_MARK] {
        assert!(
            !a.text.contains(mark),
            "{d:?} leaked into text: {q:?} -> {:?}",
            a.text
        );
        if let Some(s) = &a.summary {
            assert!(
                !s.contains(mark),
                "{d:?} leaked into summary: {q:?} -> {s:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn literals_and_comments_never_leak((d, q) in dialect_and_statement()) {
        assert_no_leak(d, &q);
    }

    #[test]
    fn unterminated_literals_never_leak(
        (d, q) in dialect_and_statement(),
        opener in proptest::sample::select(vec!["'", "/*", "$q$", "E'", "\"", "X'"]),
        rest in filler(),
    ) {
        // Everything after an unterminated opener is masked (for `"` only where it opens a string).
        // The filler must not close the literal it is in.
        let rest = rest.replace(['\'', '"', '$', '*'], "");
        let query = format!("{q} {opener}{rest}{MARK}{rest}");
        if opener == "\"" && d == Dialect::Postgres {
            return Ok(());
        }
        if opener == "$q$" && d != Dialect::Postgres {
            return Ok(());
        }
        assert_no_leak(d, &query);
    }

    #[test]
    fn arbitrary_input_is_bounded_and_never_panics(d in dialect(), q in any::<String>(), limit in 0usize..64) {
        let a = analyze_with_limit(&q, d, limit);
        prop_assert!(a.text.len() <= limit);
        prop_assert!(a.summary.as_ref().is_none_or(|s| s.len() <= MAX_SUMMARY_LEN && !s.is_empty()));
    }

    #[test]
    fn sql_like_soup_is_bounded(d in dialect(), parts in proptest::collection::vec("[ -~\\n]{0,8}", 0..64)) {
        let q = parts.concat();
        let a = analyze(&q, d);
        prop_assert!(a.text.len() <= q.len() + 2 * q.matches(['(', 'I', 'i']).count() + 2);
    }

    #[test]
    fn idempotent_on_its_own_output((d, q) in dialect_and_statement()) {
        let once = analyze(&q, d);
        let twice = analyze(&once.text, d);
        prop_assert_eq!(&twice.text, &once.text, "input {:?}", q);
        prop_assert_eq!(&twice.summary, &once.summary, "input {:?}", q);
    }

    #[test]
    fn idempotent_on_arbitrary_text(d in dialect(), q in "[ -~\\n\\té]{0,40}") {
        let once = analyze(&q, d).text;
        prop_assert_eq!(analyze(&once, d).text, once.clone(), "input {:?}", q);
    }
}

#[test]
fn one_megabyte_statements_are_bounded() {
    let literal = "x".repeat(1 << 20);
    for d in [
        Dialect::Postgres,
        Dialect::MySql,
        Dialect::Sqlite,
        Dialect::Other,
    ] {
        let q = format!("SELECT '{MARK}{literal}' FROM big");
        let a = analyze(&q, d);
        assert_eq!(a.text, "SELECT ? FROM big");
        assert_eq!(a.summary.as_deref(), Some("SELECT big"));
        let wide = format!("SELECT {} FROM wide", "col, ".repeat(200_000));
        let a = analyze(&wide, d);
        assert_eq!(a.text.len(), 32 * 1024);
        assert_eq!(
            a.summary.as_deref(),
            Some("SELECT wide"),
            "the summary still sees the whole statement"
        );
        let unterminated = format!("SELECT '{MARK}{literal}");
        assert_eq!(analyze(&unterminated, d).text, "SELECT ?");
    }
}

#[test]
fn deep_nesting_and_many_in_lists() {
    let q = format!(
        "SELECT * FROM t WHERE a IN ({}1{})",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let a = analyze(&q, Dialect::Other);
    assert!(a.text.len() <= 32 * 1024);
    assert_eq!(a.summary.as_deref(), Some("SELECT t"));
    let many = format!(
        "SELECT * FROM t WHERE id IN ({})",
        vec!["1"; 50_000].join(", ")
    );
    assert_eq!(
        analyze(&many, Dialect::Other).text,
        "SELECT * FROM t WHERE id IN (?)"
    );
}
