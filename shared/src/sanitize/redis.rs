//! Redis commands (`db.query.text`) in CLI syntax, with values masked.
//!
//! [`sanitize_command`] takes a command as the client sends it (the name, then its arguments, as
//! bytes) and writes it the way `redis-cli` shows it: the upper-cased name, then the arguments
//! separated by single spaces. Arguments that name things (keys, fields, channels, parameter names)
//! or shape the call (ranges, counts, options) are kept; arguments that carry data (values, members,
//! scores, increments, messages, scripts, passwords) become `?`.
//!
//! What is kept depends on the command, through a small static rule table (one `match` arm per known
//! command). A command that is not in the table has every argument masked.
//!
//! ```
//! use tracewire_shared::sanitize::redis::sanitize_command;
//!
//! let args: [&[u8]; 3] = [b"set", b"session:42", b"{\"user\":\"alice\"}"];
//! assert_eq!(sanitize_command(args), "SET session:42 ?");
//!
//! let args: [&[u8]; 5] = [b"HSET", b"user:1", b"email", b"alice@example.com", b"plan"];
//! assert_eq!(sanitize_command(args), "HSET user:1 email ? plan");
//! ```
//!
//! Kept arguments that are plain printable UTF-8 without spaces, quotes or backslashes are written
//! as they are; anything else is written in double quotes with escapes (`\"`, `\\`, `\n`, `\r`, `\t`,
//! `\xNN`), so any bytes give a readable, bounded result. Each kept argument is capped at 256 bytes
//! (then `…`), the command name at 64 bytes, and the whole text at the limit given; iteration stops
//! once the limit is reached.

use std::borrow::Cow;
use std::cell::Cell;

use super::{DEFAULT_MAX_TEXT_LEN, truncate_on_char_boundary};

/// Cap, in bytes of output, on one kept argument (before the `…` that marks a cut).
const MAX_ARG_LEN: usize = 256;
/// Cap, in bytes, on a command name that is not in the rule table.
const MAX_NAME_LEN: usize = 64;
/// Longest name (command or subcommand) in the rule tables fits in this buffer.
const LOOKUP_BUF_LEN: usize = 32;

/// What to do with the arguments after a command name (or after a subcommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Every argument is a key, field, channel, range or option: keep them all.
    KeepAll,
    /// Keep the first `n` arguments, mask the rest.
    KeepFirst(usize),
    /// A key, then `field value` pairs: `HSET h f1 ? f2 ?`.
    KeyThenPairs,
    /// `key value` pairs: `MSET k1 ? k2 ?`.
    Pairs,
    /// Mask every argument.
    MaskAll,
    /// `EVAL`-family: `script numkeys key… arg…`. The script (or sha, or function name) is masked
    /// when `mask_script`; `numkeys` and that many keys are kept; the arguments are masked.
    Eval {
        /// Whether the first argument is script source (`EVAL`) rather than a name (`EVALSHA`).
        mask_script: bool,
    },
    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
    Hello,
    /// `MIGRATE …`: everything kept up to `AUTH`/`AUTH2`, everything after masked.
    Migrate,
    /// A container command: the first argument is a subcommand looked up in its own table.
    Sub(SubTable),
}

/// The subcommand tables of container commands that can carry secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubTable {
    Config,
    Acl,
    Sentinel,
    Script,
    Function,
    Module,
}

/// Builds a lookup function `fn(&str) -> Option<(&'static str, Rule)>` from `rule => [names]`
/// entries, as one `match` on the upper-cased name. Also builds, for tests, the list of names.
macro_rules! rule_table {
    (
        $(#[$meta:meta])*
        fn $lookup:ident; names $names:ident;
        $( $rule:expr => [ $( $name:literal ),+ $(,)? ] ),* $(,)?
    ) => {
        $(#[$meta])*
        fn $lookup(upper: &str) -> Option<(&'static str, Rule)> {
            match upper {
                $( $( $name => Some(($name, $rule)), )+ )*
                _ => None,
            }
        }

        #[cfg(test)]
        const $names: &[&str] = &[ $( $( $name, )+ )* ];
    };
}

rule_table! {
    /// The top-level rule table.
    fn command_rule; names COMMAND_NAMES;

    // Keys, fields, channels, ranges, cursors, counts and options only.
    Rule::KeepAll => [
        // strings and bitmaps
        "GET", "GETDEL", "GETEX", "MGET", "STRLEN", "GETRANGE", "SUBSTR", "LCS", "INCR", "DECR",
        "GETBIT", "BITCOUNT", "BITPOS", "BITOP", "BITFIELD_RO",
        // keys and expiry
        "DEL", "UNLINK", "EXISTS", "TYPE", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST",
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "RENAME", "RENAMENX", "TOUCH", "KEYS", "SCAN",
        "RANDOMKEY", "DUMP", "OBJECT", "MOVE", "COPY", "SORT", "SORT_RO", "WAIT", "WAITAOF",
        // hashes
        "HGET", "HMGET", "HDEL", "HEXISTS", "HLEN", "HKEYS", "HVALS", "HGETALL", "HSTRLEN",
        "HRANDFIELD", "HSCAN", "HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT", "HTTL", "HPTTL",
        "HEXPIRETIME", "HPEXPIRETIME", "HPERSIST", "HGETDEL", "HGETEX",
        // lists
        "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LTRIM", "RPOPLPUSH", "LMOVE", "BLPOP", "BRPOP",
        "BRPOPLPUSH", "BLMOVE", "LMPOP", "BLMPOP",
        // sets
        "SCARD", "SMEMBERS", "SPOP", "SRANDMEMBER", "SINTER", "SINTERSTORE", "SINTERCARD", "SUNION",
        "SUNIONSTORE", "SDIFF", "SDIFFSTORE", "SSCAN",
        // sorted sets (score and rank ranges)
        "ZCARD", "ZCOUNT", "ZRANGE", "ZRANGESTORE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
        "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZPOPMIN", "ZPOPMAX", "BZPOPMIN", "BZPOPMAX", "ZMPOP",
        "BZMPOP", "ZRANDMEMBER", "ZSCAN", "ZUNION", "ZUNIONSTORE", "ZINTER", "ZINTERSTORE",
        "ZINTERCARD", "ZDIFF", "ZDIFFSTORE",
        // streams (ids, groups, consumers)
        "XRANGE", "XREVRANGE", "XLEN", "XREAD", "XREADGROUP", "XDEL", "XTRIM", "XACK", "XGROUP",
        "XINFO", "XPENDING", "XCLAIM", "XAUTOCLAIM", "XSETID",
        // hyperloglog
        "PFCOUNT", "PFMERGE",
        // pub/sub
        "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE",
        "PUBSUB",
        // transactions
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
        // connection and server
        "SELECT", "QUIT", "RESET", "CLIENT", "INFO", "DBSIZE", "FLUSHDB", "FLUSHALL", "SAVE",
        "BGSAVE", "BGREWRITEAOF", "LASTSAVE", "TIME", "ROLE", "COMMAND", "LATENCY", "SLOWLOG",
        "MEMORY", "SWAPDB", "SHUTDOWN", "MONITOR", "READONLY", "READWRITE", "ASKING", "CLUSTER",
        "FAILOVER", "REPLICAOF", "SLAVEOF",
    ],
    // A key, then values, members, scores, increments, positions or messages.
    Rule::KeepFirst(1) => [
        "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "APPEND", "INCRBY", "DECRBY", "INCRBYFLOAT",
        "BITFIELD", "HSETEX",
        "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOS",
        "SADD", "SREM", "SISMEMBER", "SMISMEMBER",
        // sorted sets: members, scores and lexicographic ranges (which carry member text)
        "ZADD", "ZINCRBY", "ZREM", "ZSCORE", "ZMSCORE", "ZRANK", "ZREVRANK", "ZRANGEBYLEX",
        "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX",
        "XADD", "PFADD",
        "GEOADD", "GEOPOS", "GEODIST", "GEOHASH", "GEOSEARCH", "GEORADIUS", "GEORADIUS_RO",
        "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO",
        "PUBLISH", "SPUBLISH",
    ],
    // Two names (key and field, offset or index, source and destination), then values.
    Rule::KeepFirst(2) => [
        "SETRANGE", "SETBIT", "HINCRBY", "HINCRBYFLOAT", "LSET", "LINSERT", "LREM", "SMOVE",
        "RESTORE", "GEOSEARCHSTORE",
    ],
    Rule::KeyThenPairs => ["HSET", "HMSET", "HSETNX"],
    Rule::Pairs => ["MSET", "MSETNX"],
    Rule::MaskAll => ["AUTH", "PING", "ECHO"],
    Rule::Eval { mask_script: true } => ["EVAL", "EVAL_RO"],
    Rule::Eval { mask_script: false } => ["EVALSHA", "EVALSHA_RO", "FCALL", "FCALL_RO"],
    Rule::Hello => ["HELLO"],
    Rule::Migrate => ["MIGRATE"],
    Rule::Sub(SubTable::Config) => ["CONFIG"],
    Rule::Sub(SubTable::Acl) => ["ACL"],
    Rule::Sub(SubTable::Sentinel) => ["SENTINEL"],
    Rule::Sub(SubTable::Script) => ["SCRIPT"],
    Rule::Sub(SubTable::Function) => ["FUNCTION"],
    Rule::Sub(SubTable::Module) => ["MODULE"],
}

rule_table! {
    /// `CONFIG` subcommands (also `SENTINEL CONFIG`).
    fn config_rule; names CONFIG_NAMES;
    Rule::Pairs => ["SET"],
    Rule::KeepAll => ["GET", "RESETSTAT", "REWRITE", "HELP"],
}

rule_table! {
    /// `ACL` subcommands: `SETUSER` rules carry passwords (`>secret`, `#hash`).
    fn acl_rule; names ACL_NAMES;
    Rule::KeepFirst(1) => ["SETUSER"],
    Rule::KeepFirst(2) => ["DRYRUN"],
    Rule::KeepAll => [
        "DELUSER", "GETUSER", "LIST", "USERS", "WHOAMI", "CAT", "LOG", "SAVE", "LOAD", "GENPASS",
        "HELP",
    ],
}

rule_table! {
    /// `SENTINEL` subcommands: `SET master option value…` carries `auth-pass`.
    fn sentinel_rule; names SENTINEL_NAMES;
    Rule::KeyThenPairs => ["SET"],
    Rule::Pairs => ["DEBUG"],
    Rule::Sub(SubTable::Config) => ["CONFIG"],
    Rule::KeepAll => [
        "MONITOR", "MASTERS", "MASTER", "REPLICAS", "SLAVES", "SENTINELS",
        "GET-MASTER-ADDR-BY-NAME", "RESET", "FAILOVER", "CKQUORUM", "FLUSHCONFIG", "REMOVE",
        "INFO-CACHE", "MYID", "PENDING-SCRIPTS", "SIMULATE-FAILURE", "IS-MASTER-DOWN-BY-ADDR",
        "HELP",
    ],
}

rule_table! {
    /// `SCRIPT` subcommands: `LOAD` carries script source.
    fn script_rule; names SCRIPT_NAMES;
    Rule::MaskAll => ["LOAD"],
    Rule::KeepAll => ["EXISTS", "FLUSH", "KILL", "DEBUG", "HELP"],
}

rule_table! {
    /// `FUNCTION` subcommands: `LOAD` carries library source, `RESTORE` a payload.
    fn function_rule; names FUNCTION_NAMES;
    Rule::MaskAll => ["LOAD", "RESTORE"],
    Rule::KeepAll => ["DELETE", "DUMP", "FLUSH", "KILL", "LIST", "STATS", "HELP"],
}

rule_table! {
    /// `MODULE` subcommands: the path is kept, module arguments are masked.
    fn module_rule; names MODULE_NAMES;
    Rule::KeepFirst(1) => ["LOAD", "LOADEX"],
    Rule::KeepAll => ["UNLOAD", "LIST", "HELP"],
}

impl SubTable {
    fn lookup(self, upper: &str) -> Option<(&'static str, Rule)> {
        match self {
            SubTable::Config => config_rule(upper),
            SubTable::Acl => acl_rule(upper),
            SubTable::Sentinel => sentinel_rule(upper),
            SubTable::Script => script_rule(upper),
            SubTable::Function => function_rule(upper),
            SubTable::Module => module_rule(upper),
        }
    }
}

/// Upper-cases `name` (ASCII) into `buf` and returns it as text, or `None` when it cannot be in any
/// table (too long, or not UTF-8).
fn upper_in<'b>(name: &[u8], buf: &'b mut [u8; LOOKUP_BUF_LEN]) -> Option<&'b str> {
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    std::str::from_utf8(dst).ok()
}

fn lookup(
    name: &[u8],
    table: impl FnOnce(&str) -> Option<(&'static str, Rule)>,
) -> Option<(&'static str, Rule)> {
    let mut buf = [0u8; LOOKUP_BUF_LEN];
    upper_in(name, &mut buf).and_then(table)
}

/// Sanitizes a Redis command into `db.query.text`, capped at [`DEFAULT_MAX_TEXT_LEN`] bytes.
///
/// `args` is the command name (any case) followed by its arguments, as sent. See the
/// [module documentation](self) for what is kept and what is masked. Empty input gives an empty
/// string.
///
/// ```
/// use tracewire_shared::sanitize::redis::sanitize_command;
///
/// let args: [&[u8]; 5] = [b"SET", b"k", b"v", b"EX", b"10"];
/// assert_eq!(sanitize_command(args), "SET k ? ? ?");
///
/// let args: [&[u8]; 3] = [b"auth", b"alice", b"hunter2"];
/// assert_eq!(sanitize_command(args), "AUTH ? ?");
///
/// // From owned buffers, e.g. what a client has already encoded:
/// let owned: Vec<Vec<u8>> = vec![b"LRANGE".to_vec(), b"queue".to_vec(), b"0".to_vec(), b"-1".to_vec()];
/// assert_eq!(sanitize_command(owned.iter().map(Vec::as_slice)), "LRANGE queue 0 -1");
/// ```
pub fn sanitize_command<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> String {
    sanitize_command_with_limit(args, DEFAULT_MAX_TEXT_LEN)
}

/// Sanitizes a Redis command into `db.query.text`, capped at `max_len` bytes (cut on a char
/// boundary).
///
/// Work is bounded: arguments are no longer read once the text has reached `max_len`, each kept
/// argument contributes at most about 256 bytes, and no argument is scanned past that.
///
/// ```
/// use tracewire_shared::sanitize::redis::sanitize_command_with_limit;
///
/// let args: [&[u8]; 4] = [b"EVAL", b"return redis.call('GET', KEYS[1])", b"1", b"counter"];
/// assert_eq!(sanitize_command_with_limit(args, 1024), "EVAL ? 1 counter");
///
/// let many = vec![&b"x"[..]; 1_000_000];
/// let text = sanitize_command_with_limit(std::iter::once(&b"DEL"[..]).chain(many), 100);
/// assert!(text.len() <= 100);
/// assert!(text.starts_with("DEL x x x"));
/// ```
pub fn sanitize_command_with_limit<'a>(
    args: impl IntoIterator<Item = &'a [u8]>,
    max_len: usize,
) -> String {
    let mut args = args.into_iter();
    let Some(name) = args.next() else {
        return String::new();
    };
    let mut out = Out::new(SCRATCH.try_with(Cell::take).unwrap_or_default(), max_len);
    let rule = match lookup(name, command_rule) {
        Some((upper, rule)) => {
            out.word(upper);
            rule
        }
        None => {
            out.sep();
            render(&mut out.text, name, MAX_NAME_LEN, true);
            Rule::MaskAll
        }
    };
    apply(rule, &mut args, &mut out);
    let mut buffer = out.finish();
    // Allocated at its exact size, so the attribute value takes it as is (no shrinking copy).
    let text = String::from(buffer.as_str());
    if buffer.capacity() <= MAX_SCRATCH_CAPACITY {
        buffer.clear();
        let _ = SCRATCH.try_with(|scratch| scratch.set(buffer));
    }
    text
}

/// The most a thread keeps of its sanitizing buffer between commands.
const MAX_SCRATCH_CAPACITY: usize = 16 * 1024;

thread_local! {
    /// The buffer commands are sanitized in, kept between calls so each text is allocated once, at its
    /// exact size. Taken out while in use: a nested call (none today) would start a fresh one.
    static SCRATCH: Cell<String> = const { Cell::new(String::new()) };

    /// The command name this thread resolved last: applications send the same command again and
    /// again, and comparing with it is cheaper than looking the name up.
    static LAST_NAME: Cell<&'static str> = const { Cell::new("") };
}

/// The upper-cased command name, for `db.operation.name`.
///
/// Every command in the rule table comes back as a `&'static str` (`Cow::Borrowed`, no allocation).
/// Any other name is upper-cased (ASCII), cut to 64 bytes and converted lossily from non-UTF-8.
///
/// ```
/// use std::borrow::Cow;
/// use tracewire_shared::sanitize::redis::command_name;
///
/// assert!(matches!(command_name(b"hset"), Cow::Borrowed("HSET")));
/// assert_eq!(command_name(b"json.set"), "JSON.SET");
/// assert!(command_name(&[b'x'; 1000]).len() <= 64);
/// ```
pub fn command_name(first_arg: &[u8]) -> Cow<'static, str> {
    if let Ok(last) = LAST_NAME.try_with(Cell::get)
        && !last.is_empty()
        && first_arg.eq_ignore_ascii_case(last.as_bytes())
    {
        return Cow::Borrowed(last);
    }
    if let Some((upper, _)) = lookup(first_arg, command_rule) {
        let _ = LAST_NAME.try_with(|last| last.set(upper));
        return Cow::Borrowed(upper);
    }
    if first_arg.is_empty() {
        return Cow::Borrowed("");
    }
    let head = &first_arg[..prefix_end(first_arg, MAX_NAME_LEN)];
    let mut name = String::from_utf8_lossy(head).into_owned();
    name.make_ascii_uppercase();
    truncate_on_char_boundary(&mut name, MAX_NAME_LEN);
    Cow::Owned(name)
}

/// The `db.stored_procedure.name` of a command: the sha of `EVALSHA`/`EVALSHA_RO`, the function name
/// of `FCALL`/`FCALL_RO`; `None` for any other command (including `EVAL`, whose script is not a
/// name) or when the argument is missing or empty.
///
/// The name is converted lossily from non-UTF-8 and capped at 256 bytes.
///
/// ```
/// use tracewire_shared::sanitize::redis::stored_procedure;
///
/// let args: [&[u8]; 4] = [b"fcall", b"reserve_seat", b"1", b"show:7"];
/// assert_eq!(stored_procedure(&args).as_deref(), Some("reserve_seat"));
///
/// let args: [&[u8]; 3] = [b"EVAL", b"return 1", b"0"];
/// assert_eq!(stored_procedure(&args), None);
/// ```
#[allow(
    clippy::needless_lifetimes,
    reason = "the named lifetime is part of the documented public signature"
)]
pub fn stored_procedure<'a>(args: &[&'a [u8]]) -> Option<String> {
    let (name, rest) = args.split_first()?;
    let is_procedure = ["EVALSHA", "EVALSHA_RO", "FCALL", "FCALL_RO"]
        .iter()
        .any(|known| name.eq_ignore_ascii_case(known.as_bytes()));
    if !is_procedure {
        return None;
    }
    let procedure = rest.first().filter(|p| !p.is_empty())?;
    let head = &procedure[..prefix_end(procedure, MAX_ARG_LEN)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    truncate_on_char_boundary(&mut text, MAX_ARG_LEN);
    Some(text)
}

/// The output text and its cap.
struct Out {
    text: String,
    max: usize,
}

impl Out {
    fn new(mut text: String, max: usize) -> Self {
        text.reserve(max.min(64));
        Out { text, max }
    }

    /// Whether the cap is reached: nothing more will fit, stop reading arguments.
    fn full(&self) -> bool {
        self.text.len() >= self.max
    }

    fn sep(&mut self) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
    }

    fn word(&mut self, word: &str) {
        self.sep();
        self.text.push_str(word);
    }

    fn mask(&mut self) {
        self.sep();
        self.text.push('?');
    }

    fn keep(&mut self, arg: &[u8]) {
        self.sep();
        render(&mut self.text, arg, MAX_ARG_LEN, false);
    }

    fn finish(mut self) -> String {
        truncate_on_char_boundary(&mut self.text, self.max);
        self.text
    }
}

/// The next argument, unless the output is already full.
fn next<'a>(args: &mut impl Iterator<Item = &'a [u8]>, out: &Out) -> Option<&'a [u8]> {
    if out.full() { None } else { args.next() }
}

/// Applies `rule` to the remaining arguments.
fn apply<'a>(rule: Rule, args: &mut impl Iterator<Item = &'a [u8]>, out: &mut Out) {
    match rule {
        Rule::KeepAll => positional(args, out, |_| true),
        Rule::KeepFirst(n) => positional(args, out, |i| i < n),
        Rule::KeyThenPairs => positional(args, out, |i| i == 0 || i % 2 == 1),
        Rule::Pairs => positional(args, out, |i| i % 2 == 0),
        Rule::MaskAll => positional(args, out, |_| false),
        Rule::Eval { mask_script } => eval(args, out, mask_script),
        Rule::Hello => hello(args, out),
        Rule::Migrate => migrate(args, out),
        Rule::Sub(table) => {
            let Some(sub) = next(args, out) else { return };
            match lookup(sub, |upper| table.lookup(upper)) {
                Some((upper, rule)) => {
                    out.word(upper);
                    apply(rule, args, out);
                }
                // An unknown subcommand might be anything: mask it and what follows.
                None => {
                    out.mask();
                    apply(Rule::MaskAll, args, out);
                }
            }
        }
    }
}

/// Keeps the arguments whose index (from 0) satisfies `keep`, masks the others.
fn positional<'a>(
    args: &mut impl Iterator<Item = &'a [u8]>,
    out: &mut Out,
    keep: impl Fn(usize) -> bool,
) {
    let mut index = 0;
    while let Some(arg) = next(args, out) {
        if keep(index) {
            out.keep(arg);
        } else {
            out.mask();
        }
        index += 1;
    }
}

/// `script|sha|function numkeys key… arg…`.
fn eval<'a>(args: &mut impl Iterator<Item = &'a [u8]>, out: &mut Out, mask_script: bool) {
    let Some(script) = next(args, out) else {
        return;
    };
    if mask_script {
        out.mask();
    } else {
        out.keep(script);
    }
    let Some(numkeys_arg) = next(args, out) else {
        return;
    };
    let Some(numkeys) = parse_count(numkeys_arg) else {
        out.mask();
        return apply(Rule::MaskAll, args, out);
    };
    out.keep(numkeys_arg);

    let keys_start = out.text.len();
    let mut keys = 0;
    while keys < numkeys {
        let Some(key) = next(args, out) else { break };
        out.keep(key);
        keys += 1;
    }
    if keys < numkeys {
        // Stopped before `numkeys` keys: either the command ended early (it is malformed, and
        // what looked like keys may be values) or the text is full. In the latter case the keys
        // stand only if the iterator promises enough arguments left; reading on to find out
        // would not be bounded work.
        let complete = out.full() && args.size_hint().0 >= numkeys - keys;
        if !complete {
            out.text.truncate(keys_start);
            for _ in 0..keys {
                out.mask();
            }
        }
        return;
    }
    apply(Rule::MaskAll, args, out);
}

/// `[protover [AUTH username password] [SETNAME clientname]]`.
fn hello<'a>(args: &mut impl Iterator<Item = &'a [u8]>, out: &mut Out) {
    let mut pending = next(args, out);
    // The protocol version is kept when it is a number; anything else goes through the options.
    if let Some(protover) = pending.filter(|p| parse_count(p).is_some()) {
        out.keep(protover);
        pending = None;
    }
    loop {
        let option = match pending.take() {
            Some(option) => option,
            None => match next(args, out) {
                Some(option) => option,
                None => return,
            },
        };
        if option.eq_ignore_ascii_case(b"AUTH") {
            out.word("AUTH");
            for _ in 0..2 {
                if next(args, out).is_none() {
                    return;
                }
                out.mask();
            }
        } else if option.eq_ignore_ascii_case(b"SETNAME") {
            out.word("SETNAME");
            let Some(name) = next(args, out) else { return };
            out.keep(name);
        } else {
            out.mask();
        }
        if out.full() {
            return;
        }
    }
}

/// `host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username
/// password] [KEYS key…]`: kept up to and including `AUTH`/`AUTH2`, masked after.
fn migrate<'a>(args: &mut impl Iterator<Item = &'a [u8]>, out: &mut Out) {
    while let Some(arg) = next(args, out) {
        out.keep(arg);
        if arg.eq_ignore_ascii_case(b"AUTH") || arg.eq_ignore_ascii_case(b"AUTH2") {
            return apply(Rule::MaskAll, args, out);
        }
    }
}

/// A non-negative decimal count (`numkeys`, protocol version), strictly digits.
fn parse_count(arg: &[u8]) -> Option<usize> {
    if arg.is_empty() || arg.len() > 19 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    arg.iter().try_fold(0usize, |n, d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// The end of the first `cap` bytes of `arg`, moved back to the start of a UTF-8 sequence that the
/// cut would split (if there is one within reach).
fn prefix_end(arg: &[u8], cap: usize) -> usize {
    if arg.len() <= cap {
        return arg.len();
    }
    (cap.saturating_sub(3)..=cap)
        .rev()
        .find(|&i| i > 0 && arg[i] & 0xC0 != 0x80)
        .unwrap_or(cap)
}

/// Whether the ASCII byte `b` can be written without quotes: printable, not a space, not a quote or
/// backslash (what [`is_bare`] says of ASCII characters).
fn is_bare_ascii(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\')
}

/// Whether `c` can be written without quotes.
fn is_bare(c: char) -> bool {
    !c.is_control() && !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\')
}

/// Writes one argument (or an unknown command name): bare when it is plain text, quoted with
/// escapes otherwise; at most `cap` bytes of content, then `…`. Reads at most `cap` bytes of `arg`.
fn render(out: &mut String, arg: &[u8], cap: usize, upper: bool) {
    let head = &arg[..prefix_end(arg, cap)];
    let mut cut = head.len() < arg.len();
    if let Ok(text) = std::str::from_utf8(head)
        && !text.is_empty()
        // A lone `?` would read as a masked value.
        && text != "?"
        // Plain ASCII, the usual key or option, is checked byte by byte, without Unicode tables.
        && (head.iter().copied().all(is_bare_ascii) || text.chars().all(is_bare))
    {
        if upper {
            out.extend(text.chars().map(|c| c.to_ascii_uppercase()));
        } else {
            out.push_str(text);
        }
        if cut {
            out.push('…');
        }
        return;
    }

    out.push('"');
    let mut written = 0;
    'chunks: for chunk in head.utf8_chunks() {
        for c in chunk.valid().chars() {
            let c = if upper { c.to_ascii_uppercase() } else { c };
            let len = escaped_len(c);
            if written + len > cap {
                cut = true;
                break 'chunks;
            }
            written += len;
            push_escaped(out, c);
        }
        for &byte in chunk.invalid() {
            if written + 4 > cap {
                cut = true;
                break 'chunks;
            }
            written += 4;
            push_hex(out, byte);
        }
    }
    if cut {
        out.push('…');
    }
    out.push('"');
}

fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' => 2,
        c if c.is_control() => 4 * c.len_utf8(),
        c => c.len_utf8(),
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => {
            let mut buf = [0u8; 4];
            for &byte in c.encode_utf8(&mut buf).as_bytes() {
                push_hex(out, byte);
            }
        }
        c => out.push(c),
    }
}

fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xF)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> String {
        sanitize_command(args.iter().map(|a| a.as_bytes()))
    }

    fn b(args: &[&[u8]]) -> String {
        sanitize_command(args.iter().copied())
    }

    #[test]
    fn documented_shapes() {
        assert_eq!(s(&["SET", "k", "v"]), "SET k ?");
        assert_eq!(s(&["GET", "k"]), "GET k");
        assert_eq!(
            s(&["HSET", "h", "f1", "v1", "f2", "v2"]),
            "HSET h f1 ? f2 ?"
        );
        assert_eq!(s(&["MSET", "k1", "v1", "k2", "v2"]), "MSET k1 ? k2 ?");
        assert_eq!(s(&["AUTH", "pw"]), "AUTH ?");
        assert_eq!(s(&["AUTH", "user", "pw"]), "AUTH ? ?");
        assert_eq!(s(&["HELLO", "3", "AUTH", "user", "pw"]), "HELLO 3 AUTH ? ?");
        assert_eq!(
            s(&["HELLO", "3", "AUTH", "user", "pw", "SETNAME", "worker-1"]),
            "HELLO 3 AUTH ? ? SETNAME worker-1"
        );
        assert_eq!(
            s(&["EVALSHA", "sha", "1", "key", "arg"]),
            "EVALSHA sha 1 key ?"
        );
        assert_eq!(
            s(&["EVAL", "return 1", "1", "key", "arg"]),
            "EVAL ? 1 key ?"
        );
        assert_eq!(s(&["PUBLISH", "ch", "hello"]), "PUBLISH ch ?");
        assert_eq!(
            s(&["CONFIG", "SET", "masterauth", "pw"]),
            "CONFIG SET masterauth ?"
        );
        assert_eq!(s(&["ZADD", "z", "1.5", "m"]), "ZADD z ? ?");
        assert_eq!(
            s(&["ACL", "SETUSER", "alice", "on", ">secret"]),
            "ACL SETUSER alice ? ?"
        );
        assert_eq!(s(&["SET", "k", "v", "EX", "10"]), "SET k ? ? ?");
    }

    #[test]
    fn kept_arguments_of_read_commands() {
        assert_eq!(s(&["MGET", "a", "b"]), "MGET a b");
        assert_eq!(s(&["DEL", "a", "b"]), "DEL a b");
        assert_eq!(s(&["EXISTS", "a"]), "EXISTS a");
        assert_eq!(s(&["HGET", "h", "f"]), "HGET h f");
        assert_eq!(s(&["HMGET", "h", "f", "g"]), "HMGET h f g");
        assert_eq!(s(&["LRANGE", "k", "0", "-1"]), "LRANGE k 0 -1");
        assert_eq!(
            s(&["ZRANGE", "z", "0", "10", "WITHSCORES"]),
            "ZRANGE z 0 10 WITHSCORES"
        );
        assert_eq!(s(&["EXPIRE", "k", "10"]), "EXPIRE k 10");
        assert_eq!(
            s(&["SCAN", "0", "MATCH", "p*", "COUNT", "10"]),
            "SCAN 0 MATCH p* COUNT 10"
        );
        assert_eq!(s(&["KEYS", "user:*"]), "KEYS user:*");
        assert_eq!(s(&["SUBSCRIBE", "a", "b"]), "SUBSCRIBE a b");
        assert_eq!(s(&["SELECT", "2"]), "SELECT 2");
        assert_eq!(s(&["CLIENT", "SETNAME", "w"]), "CLIENT SETNAME w");
        assert_eq!(s(&["INFO", "memory"]), "INFO memory");
        assert_eq!(s(&["DBSIZE"]), "DBSIZE");
        assert_eq!(s(&["FLUSHDB", "ASYNC"]), "FLUSHDB ASYNC");
        assert_eq!(s(&["MULTI"]), "MULTI");
        assert_eq!(s(&["WATCH", "k"]), "WATCH k");
        assert_eq!(s(&["EXEC"]), "EXEC");
        assert_eq!(
            s(&["XREAD", "COUNT", "2", "STREAMS", "s", "0"]),
            "XREAD COUNT 2 STREAMS s 0"
        );
    }

    #[test]
    fn masked_values() {
        assert_eq!(s(&["SADD", "k", "m1", "m2"]), "SADD k ? ?");
        assert_eq!(s(&["SISMEMBER", "k", "m"]), "SISMEMBER k ?");
        assert_eq!(s(&["LPUSH", "k", "a", "b"]), "LPUSH k ? ?");
        assert_eq!(s(&["INCRBY", "k", "5"]), "INCRBY k ?");
        assert_eq!(s(&["HINCRBY", "h", "f", "5"]), "HINCRBY h f ?");
        assert_eq!(s(&["SETEX", "k", "10", "v"]), "SETEX k ? ?");
        assert_eq!(s(&["ZSCORE", "z", "m"]), "ZSCORE z ?");
        assert_eq!(s(&["XADD", "s", "*", "f", "v"]), "XADD s ? ? ?");
        assert_eq!(s(&["PING"]), "PING");
        assert_eq!(s(&["PING", "hello"]), "PING ?");
        assert_eq!(s(&["ECHO", "hello"]), "ECHO ?");
        assert_eq!(s(&["LSET", "k", "0", "v"]), "LSET k 0 ?");
        assert_eq!(s(&["HSETNX", "h", "f", "v"]), "HSETNX h f ?");
        assert_eq!(
            s(&["ZRANGEBYLEX", "z", "[alice", "[bob"]),
            "ZRANGEBYLEX z ? ?"
        );
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            s(&["config", "set", "a", "1", "b", "2"]),
            "CONFIG SET a ? b ?"
        );
        assert_eq!(s(&["CONFIG", "GET", "maxmemory"]), "CONFIG GET maxmemory");
        assert_eq!(s(&["CONFIG", "WHATEVER", "x"]), "CONFIG ? ?");
        assert_eq!(s(&["CONFIG"]), "CONFIG");
        assert_eq!(s(&["ACL", "DELUSER", "alice"]), "ACL DELUSER alice");
        assert_eq!(
            s(&["ACL", "DRYRUN", "alice", "SET", "k", "v"]),
            "ACL DRYRUN alice SET ? ?"
        );
        assert_eq!(
            s(&[
                "SENTINEL",
                "SET",
                "mymaster",
                "auth-pass",
                "pw",
                "quorum",
                "2"
            ]),
            "SENTINEL SET mymaster auth-pass ? quorum ?"
        );
        assert_eq!(
            s(&["SENTINEL", "CONFIG", "SET", "announce-ip", "10.0.0.1"]),
            "SENTINEL CONFIG SET announce-ip ?"
        );
        assert_eq!(
            s(&["SENTINEL", "get-master-addr-by-name", "mymaster"]),
            "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster"
        );
        assert_eq!(s(&["SCRIPT", "LOAD", "return 1"]), "SCRIPT LOAD ?");
        assert_eq!(s(&["SCRIPT", "EXISTS", "abc"]), "SCRIPT EXISTS abc");
        assert_eq!(
            s(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=x"]),
            "FUNCTION LOAD ? ?"
        );
        assert_eq!(s(&["FUNCTION", "DELETE", "lib"]), "FUNCTION DELETE lib");
        assert_eq!(
            s(&["MODULE", "LOAD", "/m.so", "secret"]),
            "MODULE LOAD /m.so ?"
        );
    }

    #[test]
    fn migrate_masks_after_auth() {
        assert_eq!(
            s(&[
                "MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "pw", "KEYS", "a", "b"
            ]),
            "MIGRATE h 6379 \"\" 0 5000 AUTH ? ? ? ?"
        );
        assert_eq!(
            s(&[
                "MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "auth2", "u", "pw"
            ]),
            "MIGRATE h 6379 k 0 5000 COPY auth2 ? ?"
        );
        assert_eq!(
            s(&["MIGRATE", "h", "6379", "k", "0", "5000"]),
            "MIGRATE h 6379 k 0 5000"
        );
    }

    #[test]
    fn eval_variants() {
        assert_eq!(
            s(&["EVAL", "script", "notanumber", "k", "v"]),
            "EVAL ? ? ? ?"
        );
        assert_eq!(s(&["EVAL", "script", "-1", "k"]), "EVAL ? ? ?");
        assert_eq!(s(&["EVAL", "script", "0", "a", "b"]), "EVAL ? 0 ? ?");
        assert_eq!(
            s(&["EVAL", "script", "2", "k1", "k2", "a"]),
            "EVAL ? 2 k1 k2 ?"
        );
        assert_eq!(s(&["EVAL", "script"]), "EVAL ?");
        // More keys announced than there are arguments: the command is malformed; mask them.
        assert_eq!(s(&["EVAL", "script", "5", "a", "b"]), "EVAL ? 5 ? ?");
        // Also when the limit stops the keys before the end is known.
        let args: [&[u8]; 5] = [b"EVAL", b"script", b"5", b"a", b"b"];
        assert_eq!(sanitize_command_with_limit(args, 11), "EVAL ? 5 ? ");
        let args: [&[u8]; 7] = [b"EVAL", b"script", b"3", b"a", b"b", b"c", b"v"];
        assert_eq!(sanitize_command_with_limit(args, 11), "EVAL ? 3 a ");
        // Without a size hint the keys cannot be vouched for: masked.
        let unhinted = args.into_iter().filter(|_| true);
        assert_eq!(sanitize_command_with_limit(unhinted, 11), "EVAL ? 3 ? ");
        assert_eq!(s(&["FCALL", "myfn", "1", "k", "v"]), "FCALL myfn 1 k ?");
        assert_eq!(s(&["evalsha_ro", "sha", "0"]), "EVALSHA_RO sha 0");
    }

    #[test]
    fn hello_variants() {
        assert_eq!(s(&["HELLO"]), "HELLO");
        assert_eq!(s(&["HELLO", "3"]), "HELLO 3");
        assert_eq!(s(&["HELLO", "3", "SETNAME", "app"]), "HELLO 3 SETNAME app");
        assert_eq!(
            s(&["hello", "2", "auth", "SETNAME", "pw"]),
            "HELLO 2 AUTH ? ?"
        );
        // No protocol version: still nothing after AUTH is kept.
        assert_eq!(s(&["HELLO", "AUTH", "SETNAME", "pw"]), "HELLO AUTH ? ?");
        assert_eq!(s(&["HELLO", "3", "AUTH", "u"]), "HELLO 3 AUTH ?");
        assert_eq!(s(&["HELLO", "3", "BOGUS", "x"]), "HELLO 3 ? ?");
    }

    #[test]
    fn lower_case_and_unknown_commands() {
        assert_eq!(s(&["set", "k", "v"]), "SET k ?");
        assert_eq!(s(&["hGeT", "h", "f"]), "HGET h f");
        assert_eq!(s(&["json.set", "doc", "$", "{}"]), "JSON.SET ? ? ?");
        assert_eq!(s(&["FROBNICATE"]), "FROBNICATE");
        assert_eq!(s(&["my cmd", "x"]), "\"MY CMD\" ?");
    }

    #[test]
    fn empty_input() {
        assert_eq!(sanitize_command(std::iter::empty()), "");
        assert_eq!(b(&[b""]), "\"\"");
        assert_eq!(s(&["GET", ""]), "GET \"\"");
    }

    #[test]
    fn binary_and_non_utf8_arguments() {
        assert_eq!(b(&[b"GET", b"\x00\xff\xfe"]), r#"GET "\x00\xff\xfe""#);
        assert_eq!(b(&[b"GET", b"a b"]), r#"GET "a b""#);
        assert_eq!(
            b(&[b"GET", b"say \"hi\"\\\n\r\t"]),
            r#"GET "say \"hi\"\\\n\r\t""#
        );
        assert_eq!(b(&[b"GET", "caf\u{e9}".as_bytes()]), "GET caf\u{e9}");
        assert_eq!(b(&[b"GET", b"it's"]), "GET \"it's\"");
        assert_eq!(b(&[b"GET", "\u{85}".as_bytes()]), r#"GET "\xc2\x85""#);
        assert_eq!(b(&[b"GET", b"?"]), "GET \"?\"");
        assert_eq!(b(&[b"\xff\xfe", b"x"]), r#""\xff\xfe" ?"#);
        // Binary values are masked like any other value.
        assert_eq!(b(&[b"SET", b"k", b"\x00\x01\x02"]), "SET k ?");
    }

    #[test]
    fn long_arguments_are_capped() {
        let long = "k".repeat(10_000);
        let text = s(&["GET", &long]);
        assert_eq!(text, format!("GET {}…", "k".repeat(MAX_ARG_LEN)));

        let multibyte = "é".repeat(1_000);
        let text = s(&["GET", &multibyte]);
        assert!(text.len() <= 4 + MAX_ARG_LEN + '…'.len_utf8());
        assert!(text.ends_with('…'));

        let binary = vec![0u8; 10_000];
        let text = b(&[b"GET", &binary]);
        assert!(text.len() <= 4 + MAX_ARG_LEN + 2 + '…'.len_utf8());
        assert!(text.ends_with("…\""));

        let name = "x".repeat(1_000);
        let text = s(&[&name]);
        assert_eq!(text, format!("{}…", "X".repeat(MAX_NAME_LEN)));
    }

    #[test]
    fn million_arguments_stay_under_the_limit() {
        let value = [b'v'; 10];
        let mut args: Vec<&[u8]> = vec![b"RPUSH", b"list"];
        args.extend(std::iter::repeat_n(&value[..], 1_000_000));
        let text = sanitize_command(args.iter().copied());
        assert!(text.len() <= DEFAULT_MAX_TEXT_LEN);
        assert!(text.starts_with("RPUSH list ? ?"));

        let mut keys: Vec<&[u8]> = vec![b"DEL"];
        keys.extend(std::iter::repeat_n(&b"some:key"[..], 1_000_000));
        let text = sanitize_command_with_limit(keys.iter().copied(), 1000);
        assert!(text.len() <= 1000);

        // The iterator is not drained once the cap is reached.
        let mut pulled = 0usize;
        let counting = std::iter::repeat_n(&b"k"[..], 1_000_000).inspect(|_| pulled += 1);
        let text = sanitize_command_with_limit(std::iter::once(&b"DEL"[..]).chain(counting), 100);
        assert!(text.len() <= 100);
        assert!(pulled < 100);
    }

    #[test]
    fn limit_cuts_on_char_boundary() {
        assert_eq!(sanitize_command_with_limit([&b"GET"[..], b"k"], 0), "");
        assert_eq!(
            sanitize_command_with_limit([&b"GET"[..], b"key"], 5),
            "GET k"
        );
        let text = sanitize_command_with_limit([&b"GET"[..], "ééé".as_bytes()], 6);
        assert_eq!(text, "GET é");
    }

    #[test]
    fn command_name_borrows_for_known_commands() {
        for name in COMMAND_NAMES {
            let lower = name.to_ascii_lowercase();
            assert!(matches!(command_name(lower.as_bytes()), Cow::Borrowed(n) if n == *name));
            assert_eq!(name.to_ascii_uppercase(), *name);
            assert!(name.len() <= LOOKUP_BUF_LEN);
        }
        assert_eq!(command_name(b"json.get"), "JSON.GET");
        assert_eq!(command_name(b""), "");
        assert_eq!(command_name(b"\xffab"), "\u{fffd}AB");
        let long = command_name(&[0xff; 200]);
        assert!(long.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn the_remembered_name_only_answers_for_itself() {
        // Each name right after another: the thread's last name must never stand in for a neighbour.
        let sequence: [(&[u8], &str); 8] = [
            (b"get", "GET"),
            (b"GET", "GET"),
            (b"GETDEL", "GETDEL"),
            (b"ge", "GE"),
            (b"get", "GET"),
            (b"gets", "GETS"),
            (b"", ""),
            (b"Set", "SET"),
        ];
        for (sent, name) in sequence {
            assert_eq!(command_name(sent), name, "{sent:?}");
        }
    }

    #[test]
    fn sub_tables_are_upper_case_and_fit() {
        for names in [
            CONFIG_NAMES,
            ACL_NAMES,
            SENTINEL_NAMES,
            SCRIPT_NAMES,
            FUNCTION_NAMES,
            MODULE_NAMES,
        ] {
            for name in names {
                assert_eq!(name.to_ascii_uppercase(), *name);
                assert!(name.len() <= LOOKUP_BUF_LEN);
            }
        }
    }

    #[test]
    fn stored_procedure_names() {
        let args: [&[u8]; 4] = [b"EVALSHA", b"abc123", b"1", b"k"];
        assert_eq!(stored_procedure(&args).as_deref(), Some("abc123"));
        let args: [&[u8]; 2] = [b"fcall_ro", b"getter"];
        assert_eq!(stored_procedure(&args).as_deref(), Some("getter"));
        let args: [&[u8]; 2] = [b"GET", b"k"];
        assert_eq!(stored_procedure(&args), None);
        let args: [&[u8]; 1] = [b"EVALSHA"];
        assert_eq!(stored_procedure(&args), None);
        let args: [&[u8]; 2] = [b"EVALSHA", b""];
        assert_eq!(stored_procedure(&args), None);
        assert_eq!(stored_procedure(&[]), None);
        let long = vec![b'a'; 1000];
        let args: [&[u8]; 2] = [b"FCALL", &long];
        assert_eq!(stored_procedure(&args).map(|n| n.len()), Some(MAX_ARG_LEN));
    }

    #[test]
    fn ascii_bare_check_agrees_with_the_character_classes() {
        for b in 0u8..=0x7f {
            assert_eq!(is_bare_ascii(b), is_bare(char::from(b)), "byte {b:#x}");
        }
        let mut out = String::new();
        render(&mut out, "user:é".as_bytes(), 64, false);
        assert_eq!(out, "user:é");
        out.clear();
        render(&mut out, "é\u{a0}".as_bytes(), 64, false);
        assert_eq!(out, "\"é\u{a0}\"");
        out.clear();
        render(&mut out, b"json.set", 64, true);
        assert_eq!(out, "JSON.SET");
        out.clear();
        render(&mut out, b"?", 64, false);
        assert_eq!(out, "\"?\"");
        out.clear();
        render(&mut out, b"abcdef", 3, false);
        assert_eq!(out, "abc…");
    }

    #[test]
    fn texts_are_allocated_at_their_size_and_the_buffer_is_reused() {
        let args: [&[u8]; 3] = [b"SET", b"k", b"secret"];
        let first = sanitize_command(args);
        assert_eq!((first.as_str(), first.capacity()), ("SET k ?", first.len()));
        let long = vec![b'k'; 200];
        let args: [&[u8]; 2] = [b"GET", &long];
        let second = sanitize_command(args);
        assert_eq!(second.capacity(), second.len());
        assert_eq!(sanitize_command(args), second);
        let kept = || {
            SCRATCH.with(|scratch| {
                let buffer = scratch.take();
                let capacity = buffer.capacity();
                scratch.set(buffer);
                capacity
            })
        };
        assert!(
            kept() >= second.len(),
            "the buffer is kept for the next command"
        );
        // A text past the bound is built, but its buffer is not kept by the thread.
        let many: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
            .chain(std::iter::repeat_n(&long[..], 200))
            .collect();
        let huge = sanitize_command_with_limit(many, 1 << 20);
        assert!(huge.len() > MAX_SCRATCH_CAPACITY);
        assert!(kept() <= MAX_SCRATCH_CAPACITY);
    }

    #[test]
    fn prefix_end_backs_off_split_chars() {
        let e = "é".repeat(200); // 2 bytes each
        assert_eq!(prefix_end(e.as_bytes(), 255), 254);
        assert_eq!(prefix_end(e.as_bytes(), 256), 256);
        assert_eq!(prefix_end(b"abc", 256), 3);
        assert_eq!(prefix_end(&[0x80; 10], 4), 4);
    }
}
