//! SQL statement text (`db.query.text`) and summary (`db.query.summary`).
//!
//! [`analyze`] runs one pass of a small dialect-aware lexer over the statement: literals become `?`,
//! comments disappear, identifiers, keywords, placeholders, operators and whitespace stay as written.
//! The same pass feeds a token-level state machine that builds the summary
//! (`{operation} {target} …` in query order). No regular expressions, no parser, no panics: any `&str`
//! gives a bounded result.
//!
//! ```
//! use tracewire_shared::sanitize::sql::{analyze, Dialect};
//!
//! let a = analyze(
//!     "INSERT INTO users (email, age) VALUES ('alice@example.com', 42) -- signup",
//!     Dialect::MySql,
//! );
//! assert_eq!(a.text, "INSERT INTO users (email, age) VALUES (?, ?) ");
//! assert_eq!(a.summary.as_deref(), Some("INSERT users"));
//! ```

use super::{DEFAULT_MAX_TEXT_LEN, truncate_on_char_boundary};

/// The SQL dialect a statement is written in; it decides what counts as a literal.
///
/// ```
/// use tracewire_shared::sanitize::sql::{analyze, Dialect};
///
/// // In PostgreSQL "…" is an identifier; in MySQL it is a string.
/// assert_eq!(analyze(r#"SELECT "name" FROM t"#, Dialect::Postgres).text, r#"SELECT "name" FROM t"#);
/// assert_eq!(analyze(r#"SELECT "name" FROM t"#, Dialect::MySql).text, "SELECT ? FROM t");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `"…"` identifiers, `E'…'` escapes, `$tag$…$tag$` strings, nested block comments.
    Postgres,
    /// MySQL and MariaDB: `"…"` strings, backslash escapes, `#` comments.
    MySql,
    /// SQLite: `"…"` treated as strings (SQLite falls back to that when no column matches).
    Sqlite,
    /// Anything else: `"…"` treated as strings, no backslash escapes.
    #[default]
    Other,
}

impl Dialect {
    fn double_quote_is_identifier(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    fn backslash_escapes(self) -> bool {
        matches!(self, Dialect::MySql)
    }

    fn hash_comments(self) -> bool {
        matches!(self, Dialect::MySql)
    }

    fn nested_comments(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    fn dollar_quotes(self) -> bool {
        matches!(self, Dialect::Postgres)
    }
}

/// The result of [`analyze`]: what the span records about a statement.
///
/// ```
/// use tracewire_shared::sanitize::sql::{analyze, Dialect};
///
/// let a = analyze("BEGIN; UPDATE accounts SET balance = 0 WHERE id = $1; COMMIT", Dialect::Postgres);
/// assert_eq!(a.summary.as_deref(), Some("BEGIN UPDATE accounts COMMIT"));
/// assert_eq!(a.statements, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Analysis {
    /// The sanitized statement text for `db.query.text`: literals replaced by `?`, comments removed,
    /// `IN (?, ?, …)` collapsed to `IN (?)`, bounded by the configured limit.
    pub text: String,
    /// `db.query.summary`: operations and their targets in query order, at most 255 bytes; `None`
    /// when no operation was recognised.
    pub summary: Option<String>,
    /// How many statements the text holds (`;`-separated, empty ones not counted); adapters report
    /// `db.operation.batch.size` when it is 2 or more.
    pub statements: usize,
}

/// The longest `db.query.summary` produced, in bytes.
pub const MAX_SUMMARY_LEN: usize = 255;

/// Sanitizes and summarizes `query`, capping the text at [`DEFAULT_MAX_TEXT_LEN`].
///
/// ```
/// use tracewire_shared::sanitize::sql::{analyze, Dialect};
///
/// let a = analyze("SELECT * FROM orders WHERE id IN (1, 2, 3) AND note = 'secret'", Dialect::Sqlite);
/// assert_eq!(a.text, "SELECT * FROM orders WHERE id IN (?) AND note = ?");
/// assert_eq!(a.summary.as_deref(), Some("SELECT orders"));
/// ```
pub fn analyze(query: &str, dialect: Dialect) -> Analysis {
    analyze_with_limit(query, dialect, DEFAULT_MAX_TEXT_LEN)
}

/// Like [`analyze`], with the text capped at `max_len` bytes (cut on a char boundary).
///
/// Past the cap the lexer keeps going for the summary only (one linear pass, no more output), and stops
/// once the summary is complete too.
///
/// ```
/// use tracewire_shared::sanitize::sql::{analyze_with_limit, Dialect};
///
/// let a = analyze_with_limit("SELECT a, b, c FROM t", Dialect::Other, 8);
/// assert_eq!(a.text, "SELECT a");
/// ```
pub fn analyze_with_limit(query: &str, dialect: Dialect, max_len: usize) -> Analysis {
    let mut lexer = Lexer {
        src: query,
        bytes: query.as_bytes(),
        pos: 0,
        dialect,
        out: String::with_capacity(query.len().min(max_len.saturating_add(8))),
        max_len,
        in_list: InList::Idle,
        copy_from: 0,
        masking_rest: false,
        text_full: false,
        summary: Summarizer {
            out: String::with_capacity(64),
            ..Summarizer::default()
        },
    };
    lexer.run();
    lexer.flush(query.len());
    let mut text = lexer.out;
    truncate_on_char_boundary(&mut text, max_len);
    let statements = lexer.summary.statements + usize::from(lexer.summary.statement_has_tokens);
    let summary = lexer.summary.finish();
    Analysis {
        text,
        summary,
        statements,
    }
}

/// Progress of the `IN (…)` collapse: the output position just after `(` while only values and commas
/// have followed.
#[derive(Clone, Copy)]
enum InList {
    Idle,
    AfterIn,
    Open { out_pos: usize, saw_value: bool },
}

struct Lexer<'q> {
    src: &'q str,
    bytes: &'q [u8],
    pos: usize,
    dialect: Dialect,
    out: String,
    max_len: usize,
    in_list: InList,
    /// Where the source not yet copied into `out` starts.
    copy_from: usize,
    /// Inside user/role DDL after `PASSWORD` / `IDENTIFIED`: tokens are lexed but not written until `;`.
    masking_rest: bool,
    /// The text reached the cap: nothing more is written to it.
    text_full: bool,
    summary: Summarizer,
}

const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT_CONTINUE: u8 = 4;

/// Each byte's character classes, so the lexer's hot tests are one load and one mask.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            class |= SPACE;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            class |= IDENT_START | IDENT_CONTINUE;
        }
        if c.is_ascii_digit() || c == b'$' {
            class |= IDENT_CONTINUE;
        }
        table[b] = class;
        b += 1;
    }
    table
};

fn is_ident_start(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & IDENT_START != 0
}

fn is_ident_continue(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & IDENT_CONTINUE != 0
}

fn is_space(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & SPACE != 0
}

impl<'q> Lexer<'q> {
    fn writing(&self) -> bool {
        !self.masking_rest && !self.text_full
    }

    /// The position of the first byte at or after `from` that satisfies `stop`, or the end.
    fn scan(&self, from: usize, stop: impl Fn(u8) -> bool) -> usize {
        let from = from.min(self.bytes.len());
        self.bytes[from..]
            .iter()
            .position(|&b| stop(b))
            .map_or(self.bytes.len(), |i| from + i)
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            if self.text_full && self.summary.full {
                return;
            }
            let start = self.pos;
            let b = self.bytes[start];
            match b {
                _ if is_space(b) => self.pos = self.scan(start + 1, |b| !is_space(b)),
                b'-' if self.peek(1) == b'-' => self.line_comment(start),
                b'#' if self.dialect.hash_comments() => self.line_comment(start),
                b'/' if self.peek(1) == b'*' => self.block_comment(start),
                b'\'' => {
                    self.pos += 1;
                    self.quoted_literal(start, b'\'', self.dialect.backslash_escapes());
                }
                b'"' if self.dialect.double_quote_is_identifier() => self.quoted_identifier(b'"'),
                b'"' => {
                    self.pos += 1;
                    self.quoted_literal(start, b'"', self.dialect.backslash_escapes());
                }
                b'`' => self.quoted_identifier(b'`'),
                b'0'..=b'9' => self.number(start),
                b'.' if self.peek(1).is_ascii_digit() => self.number(start),
                b'+' | b'-'
                    if self.peek(1).is_ascii_digit()
                        || (self.peek(1) == b'.' && self.peek(2).is_ascii_digit()) =>
                {
                    self.pos += 1;
                    self.number(start);
                }
                b'$' => self.dollar(start),
                b'?' => {
                    self.pos += 1;
                    while self.peek(0).is_ascii_digit() {
                        self.pos += 1;
                    }
                    // A bare `?` is a value for the IN collapse; `?1` is a numbered placeholder.
                    self.placeholder(self.pos - start == 1);
                }
                _ if is_ident_start(b) => self.word(start),
                _ => {
                    self.pos += 1;
                    self.punct(start, b);
                }
            }
        }
    }

    /// Verbatim tokens are not copied one by one: the source from `copy_from` on is pending, and is
    /// copied in one go when a token is replaced or removed (or at the end).
    fn flush(&mut self, upto: usize) {
        if self.writing() && upto > self.copy_from {
            // Token boundaries are always at ASCII bytes or the ends, so this slice is valid UTF-8.
            self.out.push_str(&self.src[self.copy_from..upto]);
            self.check_cap();
        }
        self.copy_from = upto;
    }

    /// Once the text passes the cap it is complete: it is cut, and lexing goes on for the summary
    /// alone. An open `IN (…)` list may run past the cap, as it collapses to `IN (?)` when it closes.
    fn check_cap(&mut self) {
        if self.out.len() > self.max_len
            && !matches!(
                self.in_list,
                InList::Open {
                    saw_value: true,
                    ..
                }
            )
        {
            truncate_on_char_boundary(&mut self.out, self.max_len);
            self.text_full = true;
        }
    }

    /// Replaces the token `src[start..pos]` by `with`.
    fn replace(&mut self, start: usize, with: &str) {
        self.flush(start);
        if self.writing() && !with.is_empty() {
            self.out.push_str(with);
            self.check_cap();
        }
        self.copy_from = self.pos;
    }

    fn literal(&mut self, start: usize) {
        self.replace(start, "?");
        self.summary.other();
        self.in_list = match self.in_list {
            InList::Open { out_pos, .. } => InList::Open {
                out_pos,
                saw_value: true,
            },
            _ => InList::Idle,
        };
    }

    /// Drops the comment `src[start..pos]`. Between two tokens it leaves one space so they cannot
    /// fuse (`-/**/-` must not become `--`).
    fn drop_comment(&mut self, start: usize) {
        self.replace(start, "");
        let prev_is_token = self.out.as_bytes().last().is_some_and(|b| !is_space(*b));
        let next_is_token = self.pos < self.bytes.len() && !is_space(self.bytes[self.pos]);
        if prev_is_token && next_is_token && self.writing() {
            self.out.push(' ');
        }
    }

    fn line_comment(&mut self, start: usize) {
        self.pos = self.bytes[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |i| self.pos + i);
        self.drop_comment(start);
    }

    fn block_comment(&mut self, start: usize) {
        self.pos += 2;
        let mut depth = 1usize;
        while self.pos < self.bytes.len() {
            match (self.bytes[self.pos], self.peek(1)) {
                (b'*', b'/') => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                (b'/', b'*') if self.dialect.nested_comments() => {
                    self.pos += 2;
                    depth += 1;
                }
                _ => self.pos += 1,
            }
        }
        self.drop_comment(start);
    }

    /// Skips a literal whose opening quote has been consumed; doubled quotes (and backslashes where
    /// they escape) stay inside. Unterminated literals run to the end of the input.
    fn quoted_literal(&mut self, start: usize, quote: u8, backslash: bool) {
        while self.pos < self.bytes.len() {
            // Jump straight to the next byte that can matter.
            self.pos = self.scan(self.pos, |b| b == quote || (backslash && b == b'\\'));
            let Some(&b) = self.bytes.get(self.pos) else {
                break;
            };
            if b != quote {
                self.pos += 2; // a backslash and the byte it escapes
            } else if self.peek(1) == quote {
                self.pos += 2;
            } else {
                self.pos += 1;
                break;
            }
        }
        self.pos = self.pos.min(self.bytes.len());
        self.literal(start);
    }

    fn quoted_identifier(&mut self, quote: u8) {
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.bytes.len() {
            if self.bytes[self.pos] == quote {
                if self.peek(1) == quote {
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                break;
            }
            self.pos += 1;
        }
        self.in_list = InList::Idle;
        if !self.masking_rest {
            // The summary names `"users"`, `` `users` `` and `users` alike: ORMs quote every
            // identifier, and the quotes would split one table's series in two.
            let word = &self.src[start..self.pos];
            let q = char::from(quote);
            let bare = word
                .strip_prefix(q)
                .and_then(|w| w.strip_suffix(q))
                .filter(|w| !w.is_empty())
                .unwrap_or(word);
            self.summary.word(bare, None);
        }
    }

    /// Integer, decimal, exponent, hex (`0x…`) and binary (`0b…`) literals, with any sign already
    /// consumed. Trailing identifier characters are swallowed too, so `1abc` never half-leaks.
    fn number(&mut self, start: usize) {
        let hex = self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X');
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                self.pos += 1;
                if !hex && matches!(b, b'e' | b'E') && matches!(self.peek(0), b'+' | b'-') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        self.literal(start);
    }

    /// `$1` placeholders, PostgreSQL dollar-quoted strings, or a lone `$`.
    fn dollar(&mut self, start: usize) {
        if self.peek(1).is_ascii_digit() {
            self.pos += 1;
            while self.peek(0).is_ascii_digit() {
                self.pos += 1;
            }
            self.placeholder(false);
            return;
        }
        if self.dialect.dollar_quotes() {
            let mut end = self.pos + 1;
            if self.bytes.get(end).copied().is_some_and(is_ident_start) {
                while self
                    .bytes
                    .get(end)
                    .copied()
                    .is_some_and(|b| is_ident_continue(b) && b != b'$')
                {
                    end += 1;
                }
            }
            if self.bytes.get(end) == Some(&b'$') {
                let tag = &self.bytes[start..=end];
                let body = end + 1;
                self.pos = find(&self.bytes[body..], tag)
                    .map_or(self.bytes.len(), |i| body + i + tag.len());
                self.literal(start);
                return;
            }
        }
        self.pos += 1;
        self.punct(start, b'$');
    }

    fn placeholder(&mut self, counts_as_value: bool) {
        self.summary.other();
        self.in_list = match self.in_list {
            InList::Open { out_pos, .. } if counts_as_value => InList::Open {
                out_pos,
                saw_value: true,
            },
            _ => InList::Idle,
        };
    }

    fn word(&mut self, start: usize) {
        self.pos = self.scan(start + 1, |b| !is_ident_continue(b));
        let word = &self.src[start..self.pos];
        let next = self.peek(0);
        // String prefixes: E'…' (escapes), B'…', X'…', N'…', U&'…'.
        if word.len() == 1 {
            let c = word.as_bytes()[0].to_ascii_uppercase();
            if next == b'\'' && matches!(c, b'E' | b'B' | b'X' | b'N') {
                self.pos += 1;
                let escapes = c == b'E' || self.dialect.backslash_escapes();
                self.quoted_literal(start, b'\'', escapes);
                return;
            }
            if c == b'U' && next == b'&' && self.peek(1) == b'\'' {
                self.pos += 2;
                self.quoted_literal(start, b'\'', false);
                return;
            }
        }
        if self.masking_rest {
            return;
        }
        let kw = keyword(word);
        self.in_list = if kw == Some(Kw::IN) {
            InList::AfterIn
        } else {
            InList::Idle
        };
        if matches!(kw, Some(Kw::PASSWORD | Kw::IDENTIFIED)) && self.summary.in_credential_ddl() {
            self.mask_credentials(kw == Some(Kw::IDENTIFIED));
            return;
        }
        self.summary.word(word, kw);
    }

    /// `… PASSWORD <rest>` / `… IDENTIFIED [BY] <rest>` in user/role DDL: the rest of the statement
    /// becomes ` ?`, whatever it holds (quoted or not).
    fn mask_credentials(&mut self, identified: bool) {
        if identified {
            let mut p = self.pos;
            while p < self.bytes.len() && is_space(self.bytes[p]) {
                p += 1;
            }
            let by_end = p + 2;
            if by_end <= self.bytes.len()
                && self.bytes[p..by_end].eq_ignore_ascii_case(b"BY")
                && !self
                    .bytes
                    .get(by_end)
                    .copied()
                    .is_some_and(is_ident_continue)
            {
                self.pos = by_end;
            }
        }
        self.flush(self.pos);
        if self.writing() {
            self.out.push_str(" ?");
        }
        self.masking_rest = true;
        self.summary.other();
    }

    fn punct(&mut self, start: usize, b: u8) {
        if b == b';' && self.masking_rest {
            self.masking_rest = false;
            self.copy_from = start;
        }
        self.in_list = match (b, self.in_list) {
            (b'(', InList::AfterIn) => {
                self.flush(self.pos);
                InList::Open {
                    out_pos: self.out.len(),
                    saw_value: false,
                }
            }
            (b',', state @ InList::Open { .. }) => state,
            (b')', InList::Open { out_pos, saw_value }) => {
                if saw_value && self.writing() {
                    self.flush(start);
                    if out_pos <= self.out.len() {
                        self.out.truncate(out_pos);
                        self.out.push('?');
                    }
                }
                InList::Idle
            }
            _ => InList::Idle,
        };
        if b == b';' {
            self.summary.end_statement();
            return;
        }
        if self.masking_rest {
            return;
        }
        match b {
            b'(' => self.summary.open_paren(),
            b')' => self.summary.close_paren(),
            b',' => self.summary.comma(),
            b'.' => self.summary.dot(),
            _ => self.summary.other(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        match haystack[i..].iter().position(|&b| b == first) {
            Some(off) => {
                i += off;
                if i + needle.len() <= haystack.len() && &haystack[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
            None => return None,
        }
    }
    None
}

/// Declares [`Kw`] and the [`KEYWORDS`] table from one list, so the two cannot drift apart.
macro_rules! keywords {
    ($($name:ident),* $(,)?) => {
        /// A keyword the summary and the sanitizer care about. Matching on it is a discriminant test,
        /// not a string comparison.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Kw { $($name),* }

        /// Each keyword's canonical upper-case spelling, indexed by `Kw as usize`.
        const KEYWORDS: &[&str] = &[$(stringify!($name)),*];
        const KW_ALL: &[Kw] = &[$(Kw::$name),*];
    };
}

keywords!(
    SELECT,
    INSERT,
    UPDATE,
    DELETE,
    MERGE,
    REPLACE,
    UPSERT,
    CREATE,
    ALTER,
    DROP,
    TRUNCATE,
    CALL,
    EXEC,
    EXECUTE,
    WITH,
    BEGIN,
    START,
    COMMIT,
    ROLLBACK,
    SAVEPOINT,
    RELEASE,
    SET,
    SHOW,
    EXPLAIN,
    DESCRIBE,
    GRANT,
    REVOKE,
    USE,
    VACUUM,
    ANALYZE,
    PRAGMA,
    COPY,
    LOCK,
    PREPARE,
    DEALLOCATE,
    LISTEN,
    NOTIFY,
    REFRESH,
    REINDEX,
    ATTACH,
    DETACH,
    FROM,
    JOIN,
    INTO,
    IN,
    AS,
    ON,
    USING,
    WHERE,
    GROUP,
    ORDER,
    HAVING,
    LIMIT,
    OFFSET,
    FETCH,
    FOR,
    WINDOW,
    VALUES,
    RETURNING,
    UNION,
    INTERSECT,
    EXCEPT,
    MINUS,
    ALL,
    DISTINCT,
    INNER,
    LEFT,
    RIGHT,
    FULL,
    OUTER,
    CROSS,
    NATURAL,
    STRAIGHT_JOIN,
    PARTITION,
    DEFAULT,
    ONLY,
    LATERAL,
    IGNORE,
    LOW_PRIORITY,
    HIGH_PRIORITY,
    DELAYED,
    QUICK,
    OR,
    ABORT,
    FAIL,
    TABLE,
    INDEX,
    VIEW,
    SEQUENCE,
    SCHEMA,
    DATABASE,
    FUNCTION,
    PROCEDURE,
    TRIGGER,
    TYPE,
    EXTENSION,
    USER,
    ROLE,
    LOGIN,
    DOMAIN,
    EVENT,
    POLICY,
    TABLESPACE,
    COLLATION,
    AGGREGATE,
    SERVER,
    PUBLICATION,
    SUBSCRIPTION,
    TEMP,
    TEMPORARY,
    UNIQUE,
    MATERIALIZED,
    UNLOGGED,
    GLOBAL,
    LOCAL,
    VIRTUAL,
    EXTERNAL,
    RECURSIVE,
    IF,
    NOT,
    EXISTS,
    CONCURRENTLY,
    PASSWORD,
    IDENTIFIED,
);

const KEYWORD_SLOTS: usize = 512;
const MAX_KEYWORD_LEN: usize = 14;

/// A hash of the length and the first two and last bytes, case-folded (`& 0xDF` maps ASCII lower
/// case onto upper case, and other bytes consistently): constant time per identifier, most of which are
/// not keywords, and usable in `const` context. Callers guarantee at least two bytes.
const fn keyword_hash(bytes: &[u8]) -> usize {
    let len = bytes.len();
    let (first, second, last) = (
        (bytes[0] & 0xDF) as usize,
        (bytes[1] & 0xDF) as usize,
        (bytes[len - 1] & 0xDF) as usize,
    );
    (len * 0x9E37) ^ (first * 0x3B) ^ (second * 0x1F1) ^ (last * 0x47)
}

/// An open-addressing table of indexes into [`KEYWORDS`] (plus one; zero is empty), built at compile
/// time so each identifier costs one hash and usually one comparison.
const KEYWORD_TABLE: [u16; KEYWORD_SLOTS] = {
    let mut table = [0u16; KEYWORD_SLOTS];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let bytes = KEYWORDS[k].as_bytes();
        assert!(bytes.len() <= MAX_KEYWORD_LEN);
        let mut slot = keyword_hash(bytes) % KEYWORD_SLOTS;
        while table[slot] != 0 {
            slot = (slot + 1) % KEYWORD_SLOTS;
        }
        table[slot] = (k + 1) as u16;
        k += 1;
    }
    table
};

/// `word` as a keyword, if it is one (case-insensitively).
fn keyword(word: &str) -> Option<Kw> {
    let bytes = word.as_bytes();
    if bytes.len() < 2 || bytes.len() > MAX_KEYWORD_LEN {
        return None;
    }
    let mut slot = keyword_hash(bytes) % KEYWORD_SLOTS;
    loop {
        let entry = KEYWORD_TABLE[slot];
        if entry == 0 {
            return None;
        }
        let index = usize::from(entry - 1);
        let name = KEYWORDS[index];
        if name.len() == bytes.len() && name.as_bytes().eq_ignore_ascii_case(bytes) {
            return Some(KW_ALL[index]);
        }
        slot = (slot + 1) % KEYWORD_SLOTS;
    }
}

/// Statement-level operations that open a summary when they start a statement.
fn is_statement_operation(kw: Kw) -> bool {
    matches!(
        kw,
        Kw::SELECT
            | Kw::INSERT
            | Kw::UPDATE
            | Kw::DELETE
            | Kw::MERGE
            | Kw::REPLACE
            | Kw::UPSERT
            | Kw::CREATE
            | Kw::ALTER
            | Kw::DROP
            | Kw::TRUNCATE
            | Kw::CALL
            | Kw::EXEC
            | Kw::EXECUTE
            | Kw::BEGIN
            | Kw::START
            | Kw::COMMIT
            | Kw::ROLLBACK
            | Kw::SAVEPOINT
            | Kw::RELEASE
            | Kw::SET
            | Kw::SHOW
            | Kw::EXPLAIN
            | Kw::DESCRIBE
            | Kw::GRANT
            | Kw::REVOKE
            | Kw::USE
            | Kw::VACUUM
            | Kw::ANALYZE
            | Kw::PRAGMA
            | Kw::COPY
            | Kw::LOCK
            | Kw::PREPARE
            | Kw::DEALLOCATE
            | Kw::LISTEN
            | Kw::NOTIFY
            | Kw::REFRESH
            | Kw::REINDEX
            | Kw::ATTACH
            | Kw::DETACH
    )
}

/// Operations recognised inside parentheses (subqueries, data-modifying CTEs).
fn is_nested_operation(kw: Kw) -> bool {
    matches!(
        kw,
        Kw::SELECT | Kw::INSERT | Kw::UPDATE | Kw::DELETE | Kw::MERGE
    )
}

fn is_ddl_kind(kw: Kw) -> bool {
    matches!(
        kw,
        Kw::TABLE
            | Kw::INDEX
            | Kw::VIEW
            | Kw::SEQUENCE
            | Kw::SCHEMA
            | Kw::DATABASE
            | Kw::FUNCTION
            | Kw::PROCEDURE
            | Kw::TRIGGER
            | Kw::TYPE
            | Kw::EXTENSION
            | Kw::USER
            | Kw::ROLE
            | Kw::LOGIN
            | Kw::DOMAIN
            | Kw::EVENT
            | Kw::POLICY
            | Kw::TABLESPACE
            | Kw::COLLATION
            | Kw::AGGREGATE
            | Kw::SERVER
            | Kw::PUBLICATION
            | Kw::SUBSCRIPTION
    )
}

fn is_ddl_modifier(kw: Kw) -> bool {
    matches!(
        kw,
        Kw::OR
            | Kw::REPLACE
            | Kw::TEMP
            | Kw::TEMPORARY
            | Kw::UNIQUE
            | Kw::MATERIALIZED
            | Kw::UNLOGGED
            | Kw::GLOBAL
            | Kw::LOCAL
            | Kw::VIRTUAL
            | Kw::EXTERNAL
            | Kw::RECURSIVE
            | Kw::IF
            | Kw::NOT
            | Kw::EXISTS
            | Kw::CONCURRENTLY
            | Kw::ONLY
    )
}

/// Words that may sit between an operation's keyword and its target without being the target.
fn is_target_modifier(kw: Kw) -> bool {
    matches!(
        kw,
        Kw::ONLY
            | Kw::LATERAL
            | Kw::IGNORE
            | Kw::LOW_PRIORITY
            | Kw::HIGH_PRIORITY
            | Kw::DELAYED
            | Kw::QUICK
            | Kw::OR
            | Kw::ABORT
            | Kw::FAIL
            | Kw::REPLACE
            | Kw::ROLLBACK
            | Kw::INTO
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Expect {
    #[default]
    Nothing,
    /// The next name is a target (after FROM, JOIN, INTO, UPDATE, CALL).
    Target,
    /// A target was read; an alias (with or without AS) may follow.
    Alias,
    /// After CREATE/ALTER/DROP/TRUNCATE: modifiers, then the object kind.
    DdlKind,
    /// After the object kind: the object's name.
    DdlName,
}

/// Summary state for one level of parentheses.
#[derive(Clone, Copy, Default)]
struct Frame {
    stmt_start: bool,
    /// The innermost operation seen at this level (decides what FROM / INTO mean here).
    op: Option<Kw>,
    expect: Expect,
    /// Inside a FROM list, where a comma introduces another table.
    from_list: bool,
    /// A `WITH` statement: each CTE body's closing parenthesis may be followed by the operation.
    with: bool,
}

#[derive(Default)]
struct Summarizer {
    out: String,
    full: bool,
    frame: Frame,
    /// The enclosing levels' frames; deeper nesting than [`MAX_DEPTH`] is tracked as one level.
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    /// The last word appended was a target that a `.name` may extend.
    target_open: bool,
    pending_dot: bool,
    /// The first operation of the current top-level statement and the DDL kind that followed it.
    stmt_op: Option<Kw>,
    stmt_kind: Option<Kw>,
    statements: usize,
    statement_has_tokens: bool,
    started: bool,
}

/// Deeper nesting than this is tracked as one level: pathological input costs no memory.
const MAX_DEPTH: usize = 32;

impl Summarizer {
    fn finish(self) -> Option<String> {
        (!self.out.is_empty()).then_some(self.out)
    }

    fn push_part(&mut self, part: &str, joined_by_dot: bool) {
        if self.full {
            return;
        }
        let sep = usize::from(!self.out.is_empty());
        if self.out.len() + sep + part.len() > MAX_SUMMARY_LEN {
            self.full = true;
            return;
        }
        if joined_by_dot {
            self.out.push('.');
        } else if sep == 1 {
            self.out.push(' ');
        }
        self.out.push_str(part);
    }

    fn touch(&mut self) {
        self.statement_has_tokens = true;
        if !self.started {
            self.started = true;
            self.frame.stmt_start = true;
        }
    }

    fn in_credential_ddl(&self) -> bool {
        match self.stmt_op {
            Some(Kw::CREATE | Kw::ALTER) => {
                matches!(self.stmt_kind, Some(Kw::USER | Kw::ROLE | Kw::LOGIN))
            }
            Some(Kw::SET | Kw::GRANT) => true,
            _ => false,
        }
    }

    fn word(&mut self, word: &str, kw: Option<Kw>) {
        self.touch();
        if self.pending_dot && self.target_open {
            self.pending_dot = false;
            // One byte is needed for the dot; push_part's separator accounting covers it.
            self.push_part(word, true);
            return;
        }
        self.pending_dot = false;
        self.target_open = false;
        let frame = self.frame;
        match frame.expect {
            Expect::DdlKind => {
                if let Some(k) = kw {
                    if is_ddl_modifier(k) {
                        return;
                    }
                    if is_ddl_kind(k) {
                        if self.depth == 0 && self.stmt_kind.is_none() {
                            self.stmt_kind = Some(k);
                        }
                        self.push_part(word, false);
                        self.frame.expect = Expect::DdlName;
                        return;
                    }
                }
                // `TRUNCATE t` names its table directly.
                self.frame.expect = Expect::Nothing;
                if frame.op == Some(Kw::TRUNCATE) {
                    self.add_target(word);
                    return;
                }
            }
            Expect::DdlName => {
                if kw.is_some_and(is_ddl_modifier) {
                    return;
                }
                self.frame.expect = Expect::Nothing;
                self.add_target(word);
                return;
            }
            Expect::Target => {
                if kw.is_some_and(is_target_modifier) {
                    return;
                }
                if kw.is_none_or(|k| !is_statement_operation(k) && k != Kw::WITH && k != Kw::VALUES)
                {
                    self.add_target(word);
                    self.frame.expect = Expect::Alias;
                    return;
                }
                self.frame.expect = Expect::Nothing;
            }
            Expect::Alias => {
                if kw == Some(Kw::AS) {
                    return;
                }
                self.frame.expect = Expect::Nothing;
                if kw.is_none() {
                    return; // the alias itself
                }
            }
            Expect::Nothing => {}
        }
        self.keyword_or_name(word, kw);
    }

    fn add_target(&mut self, word: &str) {
        self.push_part(word, false);
        self.target_open = true;
    }

    fn keyword_or_name(&mut self, word: &str, kw: Option<Kw>) {
        let Some(kw) = kw else {
            self.frame.stmt_start = false;
            return;
        };
        let top = self.depth == 0;
        let start = self.frame.stmt_start;
        let is_op = if start && top {
            is_statement_operation(kw)
        } else {
            // SELECT is reserved everywhere (INSERT … SELECT, CREATE TABLE … AS SELECT); the other
            // operations only count where a statement or subquery begins.
            kw == Kw::SELECT || (start && is_nested_operation(kw))
        };
        if is_op {
            self.push_part(word, false);
            self.frame.op = Some(kw);
            self.frame.stmt_start = false;
            self.frame.from_list = false;
            if top && self.stmt_op.is_none() {
                self.stmt_op = Some(kw);
            }
            self.frame.expect = match kw {
                Kw::UPDATE | Kw::CALL | Kw::EXEC | Kw::EXECUTE => Expect::Target,
                Kw::CREATE | Kw::ALTER | Kw::DROP | Kw::TRUNCATE => Expect::DdlKind,
                _ => Expect::Nothing,
            };
            return;
        }
        match kw {
            Kw::WITH if start => {
                self.frame.with = true;
            }
            Kw::RECURSIVE if self.frame.with => {}
            Kw::UNION | Kw::INTERSECT | Kw::EXCEPT | Kw::MINUS => {
                self.frame.stmt_start = true;
                self.frame.from_list = false;
            }
            Kw::ALL | Kw::DISTINCT if start => {}
            Kw::FROM if matches!(self.frame.op, Some(Kw::SELECT | Kw::DELETE | Kw::UPDATE)) => {
                self.frame.expect = Expect::Target;
                self.frame.from_list = true;
                self.frame.stmt_start = false;
            }
            Kw::JOIN | Kw::STRAIGHT_JOIN if self.frame.op.is_some() => {
                self.frame.expect = Expect::Target;
                self.frame.from_list = false;
            }
            Kw::INTO
                if matches!(
                    self.frame.op,
                    Some(Kw::INSERT | Kw::REPLACE | Kw::UPSERT | Kw::MERGE)
                ) =>
            {
                self.frame.expect = Expect::Target;
            }
            Kw::INNER
            | Kw::LEFT
            | Kw::RIGHT
            | Kw::FULL
            | Kw::OUTER
            | Kw::CROSS
            | Kw::NATURAL
            | Kw::LATERAL => {}
            _ => {
                self.frame.stmt_start = false;
                self.frame.from_list = false;
            }
        }
    }

    fn open_paren(&mut self) {
        self.touch();
        self.pending_dot = false;
        self.target_open = false;
        if self.frame.expect == Expect::Target {
            // `FROM (SELECT …) AS sub`: the parenthesised group stands where a table would.
            self.frame.expect = Expect::Alias;
        }
        if self.depth < MAX_DEPTH {
            self.stack[self.depth] = self.frame;
            self.depth += 1;
        }
        self.frame = Frame {
            stmt_start: true,
            ..Frame::default()
        };
    }

    fn close_paren(&mut self) {
        self.touch();
        self.pending_dot = false;
        self.target_open = false;
        if self.depth > 0 {
            self.depth -= 1;
            self.frame = self.stack[self.depth];
            if self.frame.with {
                self.frame.stmt_start = true;
            }
        }
    }

    fn comma(&mut self) {
        self.touch();
        self.pending_dot = false;
        self.target_open = false;
        if self.frame.from_list {
            self.frame.expect = Expect::Target;
        }
    }

    fn dot(&mut self) {
        self.touch();
        self.pending_dot = self.target_open;
    }

    fn other(&mut self) {
        self.touch();
        self.pending_dot = false;
        self.target_open = false;
        self.frame.stmt_start = false;
        if matches!(
            self.frame.expect,
            Expect::Target | Expect::DdlKind | Expect::DdlName
        ) {
            self.frame.expect = Expect::Nothing;
        }
    }

    fn end_statement(&mut self) {
        if self.statement_has_tokens {
            self.statements += 1;
        }
        self.statement_has_tokens = false;
        self.depth = 0;
        self.frame = Frame {
            stmt_start: true,
            ..Frame::default()
        };
        self.pending_dot = false;
        self.target_open = false;
        self.stmt_op = None;
        self.stmt_kind = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(q: &str, d: Dialect) -> String {
        analyze(q, d).text
    }

    fn summary(q: &str) -> Option<String> {
        analyze(q, Dialect::Other).summary
    }

    #[test]
    fn literals_by_dialect() {
        assert_eq!(
            text("SELECT 'a''b', 'c\\'d'", Dialect::MySql),
            "SELECT ?, ?"
        );
        // Standard strings: the backslash is an ordinary character, so the second literal is 'x'.
        assert_eq!(text(r"SELECT 'C:\', 'x'", Dialect::Postgres), "SELECT ?, ?");
        assert_eq!(
            text(r"SELECT E'it\'s', 1", Dialect::Postgres),
            "SELECT ?, ?"
        );
        assert_eq!(
            text(
                "SELECT U&'d\\0061t', B'101', X'ff', N'x'",
                Dialect::Postgres
            ),
            "SELECT ?, ?, ?, ?"
        );
        assert_eq!(
            text("SELECT $$a 'b' c$$, $tag$x$y$tag$, $1", Dialect::Postgres),
            "SELECT ?, ?, $1"
        );
        assert_eq!(
            text(r#"SELECT "col" FROM "T""x""#, Dialect::Postgres),
            r#"SELECT "col" FROM "T""x""#
        );
        assert_eq!(
            text(r#"SELECT "secret" FROM `t`"#, Dialect::MySql),
            "SELECT ? FROM `t`"
        );
        assert_eq!(text(r#"SELECT "secret""x""#, Dialect::Sqlite), "SELECT ?");
        assert_eq!(
            text("SELECT 0x1F, 0b101, 1_000, 1e5, 1.5E-3", Dialect::MySql),
            "SELECT ?, ?, ?, ?, ?"
        );
    }

    #[test]
    fn placeholders_survive() {
        assert_eq!(
            text("SELECT $1, ?, ?2, :name, @p1", Dialect::Other),
            "SELECT $1, ?, ?2, :name, @p1"
        );
        assert_eq!(
            text("SELECT a::int FROM t", Dialect::Postgres),
            "SELECT a::int FROM t"
        );
    }

    #[test]
    fn comments() {
        assert_eq!(
            text("SELECT 1 # mysql comment\nFROM t", Dialect::MySql),
            "SELECT ? \nFROM t"
        );
        assert_eq!(
            text("SELECT a # b FROM t", Dialect::Postgres),
            "SELECT a # b FROM t"
        );
        assert_eq!(
            text("SELECT /* a /* b */ c */ 1", Dialect::Postgres),
            "SELECT  ?"
        );
        assert_eq!(text("SELECT /* a /* b */ 1", Dialect::MySql), "SELECT  ?");
        assert_eq!(text("SELECT a -/**/- b", Dialect::Other), "SELECT a - - b");
        assert_eq!(
            text("SELECT 1 /* unterminated 'secret'", Dialect::Other),
            "SELECT ? "
        );
    }

    #[test]
    fn unterminated_literals_mask_to_the_end() {
        assert_eq!(text("SELECT 'secret FROM t", Dialect::Other), "SELECT ?");
        assert_eq!(text("SELECT $q$secret", Dialect::Postgres), "SELECT ?");
        assert_eq!(text("SELECT \"secret", Dialect::MySql), "SELECT ?");
    }

    #[test]
    fn in_lists_collapse() {
        assert_eq!(
            text("WHERE a IN (1, 2, 'x') AND b IN(?,?)", Dialect::Other),
            "WHERE a IN (?) AND b IN(?)"
        );
        assert_eq!(
            text("WHERE a IN ($1, $2)", Dialect::Postgres),
            "WHERE a IN ($1, $2)"
        );
        assert_eq!(
            text("WHERE a IN (SELECT 1)", Dialect::Other),
            "WHERE a IN (SELECT ?)"
        );
        assert_eq!(text("WHERE a in (1)", Dialect::Other), "WHERE a in (?)");
    }

    #[test]
    fn credentials_in_user_ddl() {
        assert_eq!(
            text(
                "CREATE USER bob IDENTIFIED BY 'pw'; SELECT 1",
                Dialect::MySql
            ),
            "CREATE USER bob IDENTIFIED BY ?; SELECT ?"
        );
        assert_eq!(
            text(
                "ALTER ROLE bob WITH PASSWORD 'pw' VALID UNTIL 'x'",
                Dialect::Postgres
            ),
            "ALTER ROLE bob WITH PASSWORD ?"
        );
        assert_eq!(
            text("SET PASSWORD FOR bob = PASSWORD(hunter2)", Dialect::MySql),
            "SET PASSWORD ?"
        );
        assert_eq!(
            text(
                "ALTER USER bob IDENTIFIED WITH mysql_native_password BY 'pw'",
                Dialect::MySql
            ),
            "ALTER USER bob IDENTIFIED ?"
        );
        // A column called password is not a credential.
        assert_eq!(
            text("SELECT password FROM users", Dialect::Other),
            "SELECT password FROM users"
        );
        assert_eq!(
            summary("CREATE USER bob IDENTIFIED BY 'x'").as_deref(),
            Some("CREATE USER bob")
        );
    }

    #[test]
    fn summaries() {
        let cases = [
            ("SELECT 1", Some("SELECT")),
            ("select * from users u where u.id = 1", Some("select users")),
            (
                "UPDATE public.accounts SET x = 1",
                Some("UPDATE public.accounts"),
            ),
            (
                "DELETE FROM sessions WHERE expired",
                Some("DELETE sessions"),
            ),
            (
                "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                Some("INSERT kv"),
            ),
            (
                "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
                Some("INSERT t"),
            ),
            (
                "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2",
                Some("INSERT t"),
            ),
            (
                "SELECT EXTRACT(YEAR FROM created_at) FROM orders",
                Some("SELECT orders"),
            ),
            (
                "SELECT a FROM (SELECT b FROM c) AS sub, d",
                Some("SELECT SELECT c d"),
            ),
            (
                "SELECT a FROM x UNION ALL SELECT b FROM y",
                Some("SELECT x SELECT y"),
            ),
            (
                "WITH cte AS (SELECT * FROM a) SELECT * FROM cte",
                Some("SELECT a SELECT cte"),
            ),
            (
                "CREATE UNIQUE INDEX IF NOT EXISTS idx ON t (a)",
                Some("CREATE INDEX idx"),
            ),
            ("DROP TABLE IF EXISTS s.t", Some("DROP TABLE s.t")),
            ("TRUNCATE orders", Some("TRUNCATE orders")),
            ("CALL refresh_totals(1)", Some("CALL refresh_totals")),
            ("BEGIN", Some("BEGIN")),
            ("SELECT REPLACE(name, 'a', 'b') FROM t", Some("SELECT t")),
            (
                "SELECT * FROM a LEFT OUTER JOIN b ON a.id = b.id",
                Some("SELECT a b"),
            ),
            (
                "SELECT `users`.`id` FROM `users` WHERE `users`.`id` = ?",
                Some("SELECT users"),
            ),
            ("hello world", None),
            ("", None),
            ("'only a literal'", None),
        ];
        for (q, want) in cases {
            assert_eq!(summary(q).as_deref(), want, "{q}");
        }
    }

    #[test]
    fn quoted_identifiers_are_bare_in_the_summary() {
        let a = analyze(
            r#"SELECT "t"."id" FROM "public"."Users" AS "t""#,
            Dialect::Postgres,
        );
        assert_eq!(a.text, r#"SELECT "t"."id" FROM "public"."Users" AS "t""#);
        assert_eq!(a.summary.as_deref(), Some("SELECT public.Users"));
        assert_eq!(
            analyze(r#"INSERT INTO "unterminated"#, Dialect::Postgres)
                .summary
                .as_deref(),
            Some(r#"INSERT "unterminated"#)
        );
    }

    #[test]
    fn summary_is_capped_between_tokens() {
        let long = format!("SELECT * FROM {}", ["t"; 300].join(", "));
        let s = summary(&long).unwrap();
        assert!(s.len() <= MAX_SUMMARY_LEN);
        assert!(s.ends_with(" t"));
        let huge_name = format!("SELECT * FROM {}", "x".repeat(300));
        assert_eq!(summary(&huge_name).as_deref(), Some("SELECT"));
    }

    #[test]
    fn statement_count() {
        assert_eq!(analyze("SELECT 1", Dialect::Other).statements, 1);
        assert_eq!(analyze("SELECT 1;", Dialect::Other).statements, 1);
        assert_eq!(
            analyze("SELECT 1; SELECT 2;;", Dialect::Other).statements,
            2
        );
        assert_eq!(analyze("-- nothing", Dialect::Other).statements, 0);
    }

    #[test]
    fn limit_and_utf8() {
        let a = analyze_with_limit("SELECT ünïcödé FROM t", Dialect::Other, 9);
        assert_eq!(a.text, "SELECT ü");
        let a = analyze_with_limit("SELECT 'x'", Dialect::Other, 0);
        assert_eq!(a.text, "");
    }

    #[test]
    fn deep_nesting_is_cheap() {
        let q = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let a = analyze(&q, Dialect::Other);
        assert!(a.text.len() <= DEFAULT_MAX_TEXT_LEN);
        assert_eq!(a.summary.as_deref(), Some("SELECT"));
    }
}
