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
        // The marker may straddle two writes: search from just before the new piece. The search runs
        // on bytes, and the marker is ASCII, so wherever it is found is a character boundary.
        let from = self.buf.len().saturating_sub(BINDS_MARKER.len() - 1);
        self.buf.push_str(s);
        if let Some(at) = find_marker(&self.buf.as_bytes()[from..]) {
            self.buf.truncate(from + at);
            self.cut = true;
            // Stops diesel's formatter before it writes a single bind value.
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Where the first ` -- binds: ` in `hay` starts.
///
/// Every query is searched, so this is on the hot path. A general substring search sets up its
/// searcher on each call, which cost more than the rest of the writer (about 900 instructions a
/// query). `-` is rare in SQL, so scanning for it and checking the few hits is much cheaper.
fn find_marker(hay: &[u8]) -> Option<usize> {
    let marker = BINDS_MARKER.as_bytes();
    memchr::memchr_iter(marker[1], hay).find_map(|dash| {
        let start = dash.checked_sub(1)?;
        hay[start..].starts_with(marker).then_some(start)
    })
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
    use proptest::prelude::*;

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
    fn find_marker_agrees_with_str_find() {
        let cases = [
            "",
            "-",
            " -- binds: ",
            "x -- binds: ",
            "SELECT 1 -- comment -- binds: []",
            "a - b -- c --binds:  -- binds: [1] -- binds: [2]",
            "-- binds: at the start without its space",
            "SELECT '\u{e9}' -- binds: ",
            " -- binds:",
        ];
        for hay in cases {
            assert_eq!(
                find_marker(hay.as_bytes()),
                hay.find(BINDS_MARKER),
                "{hay:?}"
            );
        }
    }

    /// Text made of the marker's own characters, so markers, near misses and splits are common.
    fn pieces() -> impl Strategy<Value = Vec<String>> {
        let piece = prop_oneof![
            "[ \\-bindsé:x]{0,8}".boxed(),
            Just(BINDS_MARKER.to_owned()).boxed(),
            Just(" -- bi".to_owned()).boxed(),
            Just("nds: ".to_owned()).boxed(),
        ];
        prop::collection::vec(piece, 1..8)
    }

    proptest! {
        #[test]
        fn any_split_cuts_at_the_first_marker(pieces in pieces()) {
            let whole: String = pieces.concat();
            let expected = match whole.find(BINDS_MARKER) {
                Some(at) => &whole[..at],
                None => whole.as_str(),
            };
            struct Pieces(Vec<String>);
            impl fmt::Display for Pieces {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.iter().try_for_each(|p| f.write_str(p))
                }
            }
            impl fmt::Debug for Pieces {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Display::fmt(self, f)
                }
            }
            impl DebugQuery for Pieces {}
            let mut buf = String::new();
            prop_assert!(sql_of(&Pieces(pieces), &mut buf));
            prop_assert_eq!(buf.as_str(), expected);
        }
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
