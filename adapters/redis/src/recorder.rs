//! What every wrapper shares: turning a command or a pipeline into a [`DbOperation`], ending it from
//! the reply, and following `SELECT`.
//!
//! Arguments come from two places: a [`redis::Cmd`] (async connections, and `Cmd::query` on sync
//! ones) or packed RESP bytes (sync pipelines). Both are presented as iterators of `&[u8]` so one
//! code path names, sanitizes and tracks them.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use opentelemetry::StringValue;
#[cfg(feature = "tokio")]
use redis::Pipeline;
use redis::{Arg, Cmd, Value};
use tracewire_shared::db::{DbCall, DbClient, DbOperation};
use tracewire_shared::sanitize::redis::{
    command_name, sanitize_command_with_limit, stored_procedure,
};

use crate::outcome;
use crate::resp;

/// The per-connection state behind every wrapper: the shared [`DbClient`] and the database index the
/// connection is on.
///
/// The index is shared by clones (an `Arc`), because clones of a `MultiplexedConnection` or a
/// `ConnectionManager` share one server connection: a `SELECT` through any clone moves them all.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    client: DbClient,
    db: Arc<AtomicI64>,
}

/// A command as an iterator of argument slices, however it arrived.
pub(crate) trait CommandArgs<'a>: Iterator<Item = &'a [u8]> + Clone + 'a {}
impl<'a, I: Iterator<Item = &'a [u8]> + Clone + 'a> CommandArgs<'a> for I {}

/// The arguments of a [`Cmd`]. A scan cursor shows as `0` here (redis-rs writes its value only when
/// packing); [`cmd_text`] packs to record the real one.
pub(crate) fn cmd_args(cmd: &Cmd) -> impl CommandArgs<'_> + ExactSizeIterator {
    cmd.args_iter().map(|arg| match arg {
        Arg::Simple(bytes) => bytes,
        // The cursor (its value is only written when packing) and any future kind of argument.
        _ => &b"0"[..],
    })
}

/// The sanitized text of `cmd`, at most `max` bytes.
fn cmd_text(cmd: &Cmd, max: usize) -> String {
    if cmd.in_scan_mode() {
        // The cursor's current value is private to the command; packing writes it out.
        let packed = cmd.get_packed_command();
        return resp::commands(&packed)
            .next()
            .map(|args| sanitize_command_with_limit(args, max))
            .unwrap_or_default();
    }
    sanitize_command_with_limit(cmd_args(cmd), max)
}

fn is_procedure_call(name: &str) -> bool {
    matches!(name, "EVALSHA" | "EVALSHA_RO" | "FCALL" | "FCALL_RO")
}

/// `db.namespace` for a database index; the common ones without allocating.
fn namespace(db: i64) -> StringValue {
    const SMALL: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    match usize::try_from(db).ok().and_then(|i| SMALL.get(i)) {
        Some(s) => StringValue::from(*s),
        None => StringValue::from(db.to_string()),
    }
}

/// How the commands of a pipeline are named: `PIPELINE` / `MULTI`, followed by the command when
/// every command is the same one.
#[derive(Debug)]
pub(crate) struct PipelineShape {
    name: Cow<'static, str>,
    len: usize,
    has_select: bool,
}

impl PipelineShape {
    /// Looks at the first argument of each command only (a case-insensitive byte comparison with the
    /// first command's name), so naming stays cheap when the span is not recorded.
    fn of<'a>(firsts: impl Iterator<Item = &'a [u8]>, atomic: bool) -> Self {
        let prefix = if atomic { "MULTI" } else { "PIPELINE" };
        let mut len = 0;
        let mut first: Option<&[u8]> = None;
        let mut uniform = true;
        let mut has_select = false;
        for name in firsts {
            len += 1;
            has_select |= DbChange::of(name).is_some();
            match first {
                None => first = Some(name),
                Some(f) => uniform &= f.eq_ignore_ascii_case(name),
            }
        }
        let name = match first {
            Some(f) if uniform && !f.is_empty() => {
                Cow::Owned(format!("{prefix} {}", command_name(f)))
            }
            _ => Cow::Borrowed(prefix),
        };
        Self {
            name,
            len,
            has_select,
        }
    }
}

/// A command that moves the connection to another database, told from its name at start so the
/// reply can be followed without keeping the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DbChange {
    /// `SELECT n`: the index becomes `n`.
    Select,
    /// `RESET`: back to 0.
    Reset,
}

impl DbChange {
    fn of(name: &[u8]) -> Option<Self> {
        if name.eq_ignore_ascii_case(b"SELECT") {
            Some(DbChange::Select)
        } else if name.eq_ignore_ascii_case(b"RESET") {
            Some(DbChange::Reset)
        } else {
            None
        }
    }
}

/// Joins the sanitized text of each command with newlines, within `max` bytes in all.
#[cfg(feature = "sync")]
fn pipeline_text<'a, C, A>(commands: C, max: usize) -> String
where
    C: Iterator<Item = A>,
    A: Iterator<Item = &'a [u8]>,
{
    let mut text = String::new();
    for args in commands {
        let sep = usize::from(!text.is_empty());
        let Some(budget) = max.checked_sub(text.len() + sep).filter(|b| *b > 0) else {
            break;
        };
        let part = sanitize_command_with_limit(args, budget);
        if sep == 1 {
            text.push('\n');
        }
        text.push_str(&part);
    }
    text
}

impl Recorder {
    pub(crate) fn new(client: DbClient, db: i64) -> Self {
        Self {
            client,
            db: Arc::new(AtomicI64::new(db)),
        }
    }

    /// The database index the connection is on, as far as commands through the wrapper show.
    pub(crate) fn db(&self) -> i64 {
        self.db.load(Ordering::Relaxed)
    }

    fn max_text_len(&self) -> usize {
        self.client.instrumentation().config().max_text_len()
    }

    /// Starts the span of one command from its arguments.
    // Inlined into its callers so the operation is built where it ends up, not moved through
    // each return.
    #[inline(always)]
    fn start_args<'a>(
        &self,
        args: impl CommandArgs<'a>,
        text: impl FnOnce() -> String + 'a,
    ) -> DbOperation<'_> {
        let mut peek = args;
        let first = peek.next().unwrap_or_default();
        let name = command_name(first);
        let mut call = DbCall::command(name.clone(), text).with_namespace(namespace(self.db()));
        if is_procedure_call(&name)
            && let Some(procedure) = stored_procedure(&[first, peek.next().unwrap_or_default()])
        {
            call = call.with_stored_procedure(procedure);
        }
        self.client.operation(call)
    }

    /// Starts the span of a [`Cmd`].
    #[inline(always)]
    pub(crate) fn start_cmd(&self, cmd: &Cmd) -> DbOperation<'_> {
        let max = self.max_text_len();
        self.start_args(cmd_args(cmd), move || cmd_text(cmd, max))
    }

    /// Starts the span of one packed command.
    #[cfg(feature = "sync")]
    pub(crate) fn start_packed(&self, packed: &[u8]) -> DbOperation<'_> {
        let max = self.max_text_len();
        let args = resp::commands(packed).next().unwrap_or_default();
        let text_args = args.clone();
        self.start_args(args, move || sanitize_command_with_limit(text_args, max))
    }

    /// Ends a command's span, where it lies, and follows `SELECT`/`RESET`. `args` (the command's
    /// arguments) is only walked for a successful reply, and only to its second argument.
    // The operation is passed by reference and returned from `start_*` alone: kept whole in the
    // command's future, it is never copied on the way out.
    #[inline(always)]
    pub(crate) fn end_cmd<'a, A: Iterator<Item = &'a [u8]>>(
        &self,
        op: &mut DbOperation<'_>,
        args: impl FnOnce() -> A,
        result: &redis::RedisResult<Value>,
    ) {
        if let Ok(value) = result {
            let mut args = args();
            if let Some(change) = args.next().and_then(DbChange::of) {
                self.follow(change, args.next(), value);
            }
        }
        outcome::end_value(op, &self.client, result);
    }

    /// Applies a successful `SELECT n` or `RESET` to the tracked index.
    fn follow(&self, change: DbChange, arg: Option<&[u8]>, reply: &Value) {
        let ok = match reply {
            Value::Okay => true,
            Value::SimpleString(s) => s == "OK" || s == "RESET",
            _ => false,
        };
        if !ok {
            return;
        }
        match change {
            DbChange::Select => {
                if let Some(db) = arg
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    self.db.store(db, Ordering::Relaxed);
                }
            }
            DbChange::Reset => self.db.store(0, Ordering::Relaxed),
        }
    }

    /// Starts the span of a [`Pipeline`](redis::Pipeline) (async connections hand over the pipeline itself).
    #[cfg(feature = "tokio")]
    pub(crate) fn start_pipeline(&self, pipeline: &Pipeline) -> (DbOperation<'_>, PipelineShape) {
        let atomic = pipeline.is_transaction();
        let shape = PipelineShape::of(
            pipeline
                .cmd_iter()
                .map(|c| cmd_args(c).next().unwrap_or_default()),
            atomic,
        );
        let max = self.max_text_len();
        let text = move || {
            let mut text = String::new();
            for cmd in pipeline.cmd_iter() {
                let sep = usize::from(!text.is_empty());
                let Some(budget) = max.checked_sub(text.len() + sep).filter(|b| *b > 0) else {
                    break;
                };
                if sep == 1 {
                    text.push('\n');
                }
                text.push_str(&cmd_text(cmd, budget));
            }
            text
        };
        let op = self.start_shape(&shape, text);
        (op, shape)
    }

    /// Starts the span of a packed pipeline. A transaction arrives as `MULTI`, the commands, `EXEC`,
    /// with replies read from `offset`; its name and batch size leave the wrapping commands out.
    #[cfg(feature = "sync")]
    pub(crate) fn start_packed_pipeline(
        &self,
        packed: &[u8],
        offset: usize,
        count: usize,
    ) -> (DbOperation<'_>, PipelineShape, bool) {
        let first_is_multi = resp::commands(packed)
            .next()
            .and_then(|mut c| c.next())
            .is_some_and(|n| n.eq_ignore_ascii_case(b"MULTI"));
        let atomic = offset > 0 && first_is_multi;
        let user_commands = move || {
            let mut all = resp::commands(packed);
            if atomic {
                all.next();
            }
            // The reply positions say how many commands there are (redis-rs reads the `EXEC` reply
            // at `offset` = commands + 1), so the bytes are walked once, and `EXEC` is left out.
            let user = if atomic {
                offset - 1
            } else {
                offset.saturating_add(count)
            };
            all.take(user)
        };
        let shape = PipelineShape::of(
            user_commands().map(|mut c| c.next().unwrap_or_default()),
            atomic,
        );
        let max = self.max_text_len();
        let op = self.start_shape(&shape, move || pipeline_text(user_commands(), max));
        (op, shape, atomic)
    }

    fn start_shape<'a>(
        &self,
        shape: &PipelineShape,
        text: impl FnOnce() -> String + 'a,
    ) -> DbOperation<'_> {
        let call = DbCall::command(shape.name.clone(), text)
            .with_namespace(namespace(self.db()))
            .with_batch_size(shape.len);
        self.client.operation(call)
    }

    /// Ends a pipeline's span; `commands` yields each user command's name and first argument, in
    /// order, and is only walked when the pipeline holds a `SELECT` or `RESET`.
    pub(crate) fn end_pipeline<'a, I>(
        &self,
        op: &mut DbOperation<'_>,
        shape: &PipelineShape,
        atomic: bool,
        commands: impl FnOnce() -> I,
        result: &redis::RedisResult<Vec<Value>>,
    ) where
        I: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    {
        if shape.has_select
            && let Ok(values) = result
        {
            let replies: &[Value] = match (atomic, values.last()) {
                (true, Some(Value::Array(items))) => items,
                (true, _) => &[],
                (false, _) => values,
            };
            for ((name, arg), reply) in commands().zip(replies) {
                if let Some(change) = DbChange::of(name) {
                    self.follow(change, arg, reply);
                }
            }
        }
        outcome::end_values(op, &self.client, result);
    }
}

/// Name and first argument of each command of a pipeline.
#[cfg(feature = "tokio")]
pub(crate) fn pipeline_heads(pipeline: &Pipeline) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    pipeline.cmd_iter().map(|c| {
        let mut args = cmd_args(c);
        (args.next().unwrap_or_default(), args.next())
    })
}

/// Name and first argument of each user command of a packed pipeline.
#[cfg(feature = "sync")]
pub(crate) fn packed_heads(
    packed: &[u8],
    atomic: bool,
) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    resp::commands(packed)
        .skip(usize::from(atomic))
        .map(|mut c| {
            let name = c.next().unwrap_or_default();
            (name, c.next())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_names() {
        let firsts: [&[u8]; 3] = [b"GET", b"get", b"Get"];
        assert_eq!(
            PipelineShape::of(firsts.into_iter(), false).name,
            "PIPELINE GET"
        );
        let firsts: [&[u8]; 2] = [b"SET", b"GET"];
        let shape = PipelineShape::of(firsts.into_iter(), true);
        assert_eq!(shape.name, "MULTI");
        assert_eq!(shape.len, 2);
        assert!(!shape.has_select);
        assert_eq!(
            PipelineShape::of(std::iter::empty(), false).name,
            "PIPELINE"
        );
        let firsts: [&[u8]; 2] = [b"select", b"select"];
        assert!(PipelineShape::of(firsts.into_iter(), false).has_select);
    }

    #[test]
    #[cfg(feature = "sync")]
    fn pipeline_text_is_bounded() {
        let cmds: Vec<Vec<&[u8]>> = vec![vec![b"SET", b"k", b"secret"], vec![b"GET", b"k"]];
        let text = pipeline_text(cmds.iter().map(|c| c.iter().copied()), 1000);
        assert_eq!(text, "SET k ?\nGET k");
        let text = pipeline_text(cmds.iter().map(|c| c.iter().copied()), 9);
        assert!(text.len() <= 9, "{text:?}");
        assert_eq!(text, "SET k ?\nG");
        let many: Vec<Vec<&[u8]>> = (0..10_000).map(|_| vec![&b"GET"[..], b"key"]).collect();
        assert!(pipeline_text(many.iter().map(|c| c.iter().copied()), 100).len() <= 100);
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace(0).as_str(), "0");
        assert_eq!(namespace(15).as_str(), "15");
        assert_eq!(namespace(16).as_str(), "16");
        assert_eq!(namespace(-1).as_str(), "-1");
    }

    #[test]
    fn scan_mode_text_has_the_cursor() {
        let mut cmd = redis::cmd("SSCAN");
        cmd.arg("set").cursor_arg(0).arg("MATCH").arg("a*");
        assert_eq!(cmd_text(&cmd, 1000), "SSCAN set 0 MATCH a*");
    }
}
