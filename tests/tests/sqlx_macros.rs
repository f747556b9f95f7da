//! sqlx's `query!` / `query_as!` / `query_scalar!` call sites compile unchanged against an
//! `InstrumentedPool` and each gives one span.
//!
//! The macros check their statements at compile time. The workspace builds them offline
//! (`SQLX_OFFLINE=true` in `.cargo/config.toml`) from the query data in `tests/.sqlx/`; after changing
//! a statement here, regenerate it against a live server:
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test SQLX_OFFLINE=false \
//!   SQLX_OFFLINE_DIR=$PWD/tests/.sqlx cargo test -p tracewire-tests --test sqlx_macros --no-run
//! ```

use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr_str, service_url};
use tracewire_sqlx::InstrumentedPool;

struct Answer {
    n: Option<i32>,
    label: Option<String>,
}

#[tokio::test]
async fn query_macros_work_through_the_instrumented_pool() {
    let url = service_url(
        "postgres",
        "TRACEWIRE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let t = Telemetry::new();
    let pool = InstrumentedPool::builder(sqlx::PgPool::connect(&url).await.expect("connect"))
        .config(t.config())
        .build();
    let parent = t.parent("request");

    let row = {
        use tracewire_shared::context::FutureExt;
        sqlx::query!("SELECT $1::int4 AS n, 'forty-two'::text AS label", 42)
            .fetch_one(&pool)
            .with_context(parent.clone())
            .await
            .expect("query!")
    };
    assert_eq!((row.n, row.label.as_deref()), (Some(42), Some("forty-two")));

    let answer = sqlx::query_as!(Answer, "SELECT $1::int4 AS n, 'x'::text AS label", 7)
        .fetch_one(&pool)
        .await
        .expect("query_as!");
    assert_eq!((answer.n, answer.label.as_deref()), (Some(7), Some("x")));

    let n: Option<i32> = sqlx::query_scalar!("SELECT $1::int4", 5)
        .fetch_one(&pool)
        .await
        .expect("query_scalar!");
    assert_eq!(n, Some(5));
    drop(parent);

    let spans: Vec<_> = t
        .finished()
        .into_iter()
        .filter(|s| s.name == "SELECT")
        .collect();
    assert_eq!(spans.len(), 3, "one span per macro call");
    let request = t.span("request");
    assert_eq!(spans[0].parent_span_id, request.span_context.span_id());
    for span in &spans {
        assert_eq!(
            attr_str(span, semconv::DB_SYSTEM_NAME).as_deref(),
            Some("postgresql")
        );
        let text = attr_str(span, semconv::DB_QUERY_TEXT).unwrap();
        assert!(!text.contains("forty-two"), "literals are masked: {text}");
    }
    assert_eq!(
        attr_str(&spans[0], semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT $1::int4 AS n, ?::text AS label")
    );
}
