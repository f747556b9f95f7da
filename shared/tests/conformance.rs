//! The semantic conventions' official SQL sanitization and summary cases.
//!
//! The data file is the handbook's `conformance/db-sql-test-cases.json`, copied as is into
//! `tests/data/` so the crate tests itself; when the handbook sits beside the repository the test
//! also checks the copy is current.

use serde_json::Value;
use tracewire_shared::sanitize::sql::{Dialect, analyze};

const DATA: &str = include_str!("data/db-sql-test-cases.json");

fn dialect(system: &str) -> Dialect {
    match system {
        "postgresql" => Dialect::Postgres,
        "mysql" | "mariadb" => Dialect::MySql,
        "sqlite" => Dialect::Sqlite,
        _ => Dialect::Other,
    }
}

#[test]
fn all_official_cases_pass() {
    let cases: Vec<Value> = serde_json::from_str(DATA).expect("conformance data is JSON");
    assert_eq!(cases.len(), 24, "the official suite has 24 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let query = case["input"]["query"].as_str().unwrap();
        let system = case["input"]["db.system.name"].as_str().unwrap();
        let analysis = analyze(query, dialect(system));
        let texts: Vec<&str> = case["expected"]["db.query.text"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if !texts.contains(&analysis.text.as_str()) {
            failures.push(format!(
                "{name}: text {:?}, want one of {texts:?}",
                analysis.text
            ));
        }
        let summary = case["expected"]["db.query.summary"].as_str();
        if analysis.summary.as_deref() != summary {
            failures.push(format!(
                "{name}: summary {:?}, want {summary:?}",
                analysis.summary
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn copy_matches_the_handbook() {
    let handbook = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/db-sql-test-cases.json"
    );
    if let Ok(original) = std::fs::read_to_string(handbook) {
        assert_eq!(
            original, DATA,
            "tests/data/db-sql-test-cases.json is stale: copy it again from {handbook}"
        );
    }
}
