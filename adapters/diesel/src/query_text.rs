//! The SQL of a diesel query, without its bind values.
//!
//! diesel hands instrumentation an opaque `&dyn DebugQuery` whose `Display` output is the SQL sent to
//! the server followed by ` -- binds: [..]` and the `Debug` of every bind value. The bind values may be
//! secrets, so they must never reach a span. Rather than formatting everything and cutting afterwards,
//! the writer below stops formatting as soon as the ` -- binds: ` marker has been written: the bind
//! values are never formatted at all, which is both safer and cheaper.
//!
//! The cut happens at the *first* marker. Cutting at the last one would let a bind value that itself
//! contains ` -- binds: ` leak everything before it; cutting at the first can at worst shorten SQL text
//! that contains the marker itself (inside a comment or a literal), which only loses text.

use std::fmt::{self, Write};

use diesel::connection::DebugQuery;

/// What diesel writes between the SQL and the bind values.
pub(crate) const BINDS_MARKER: &str = " -- binds: ";

struct SqlOnly<'a> {
    buf: &'a mut String,
    cut: bool,
}

impl Write for SqlOnly<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Err(fmt::Error);
        }
        // The marker may straddle two writes: search from just before the new piece.
        let mut from = self.buf.len().saturating_sub(BINDS_MARKER.len() - 1);
        while !self.buf.is_char_boundary(from) {
            from -= 1;
        }
        self.buf.push_str(s);
        if let Some(at) = self.buf[from..].find(BINDS_MARKER) {
            self.buf.truncate(from + at);
            self.cut = true;
            // Stops diesel's formatter before it writes a single bind value.
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Writes the SQL of `query` (without bind values) into `buf`, replacing its contents. Returns `false`
/// when diesel could not render the query (its own formatting failed), leaving `buf` empty.
pub(crate) fn sql_of(query: &dyn DebugQuery, buf: &mut String) -> bool {
    buf.clear();
    let mut sink = SqlOnly { buf, cut: false };
    let ok = write!(sink, "{query}").is_ok();
    let cut = sink.cut;
    if !(ok || cut) {
        buf.clear();
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static [&'static str]);
    impl fmt::Display for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for piece in self.0 {
                f.write_str(piece)?;
            }
            Ok(())
        }
    }
    impl fmt::Debug for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self, f)
        }
    }
    impl DebugQuery for Fake {}

    fn sql(pieces: &'static [&'static str]) -> String {
        let mut buf = String::from("stale");
        assert!(sql_of(&Fake(pieces), &mut buf));
        buf
    }

    #[test]
    fn cuts_before_binds() {
        assert_eq!(
            sql(&[
                "SELECT * FROM t WHERE a = $1",
                " -- binds: ",
                "[\"secret\"]"
            ]),
            "SELECT * FROM t WHERE a = $1"
        );
    }

    #[test]
    fn marker_split_across_writes_and_first_marker_wins() {
        assert_eq!(
            sql(&["SELECT 1 -- bi", "nds: [\"x -- binds: y\"]"]),
            "SELECT 1"
        );
        assert_eq!(
            sql(&["SELECT ?", " -- binds: ", "[\"a -- binds: b\"]"]),
            "SELECT ?"
        );
    }

    #[test]
    fn plain_sql_is_kept_whole() {
        assert_eq!(sql(&["BEGIN"]), "BEGIN");
        assert_eq!(sql(&["SELECT 'é'", "ü"]), "SELECT 'é'ü");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn diesel_debug_query_loses_its_binds() {
        use diesel::prelude::*;
        use diesel::sqlite::Sqlite;
        diesel::table! { users (id) { id -> Integer, email -> Text } }
        let q = users::table.filter(users::email.eq("planted-secret"));
        let debug = diesel::debug_query::<Sqlite, _>(&q);
        assert!(debug.to_string().contains("planted-secret"));
        let mut buf = String::new();
        assert!(sql_of(&debug, &mut buf));
        assert_eq!(
            buf,
            "SELECT `users`.`id`, `users`.`email` FROM `users` WHERE (`users`.`email` = ?)"
        );
    }
}
