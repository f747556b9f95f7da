//! Commands back out of packed RESP bytes.
//!
//! The synchronous `redis::ConnectionLike` receives commands already encoded (`*N\r\n$len\r\narg\r\n…`,
//! several of them back to back for a pipeline). Spans need the name and the arguments, so this
//! reads them back, without copying and without trusting the input: every length is checked against
//! what is left, arithmetic is checked, and anything that is not an array of bulk strings ends the
//! iteration. The bytes came from redis-rs's encoder in practice, but `req_packed_command` is a
//! public method and may be handed anything.

/// The longest decimal length header accepted (`usize` has at most 20 digits).
const MAX_HEADER_DIGITS: usize = 20;

/// The commands in `bytes`, in order.
pub(crate) fn commands(bytes: &[u8]) -> Commands<'_> {
    Commands { rest: bytes }
}

/// Iterator over the commands of a packed pipeline (or the one command of a packed command).
#[derive(Clone, Debug)]
pub(crate) struct Commands<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Commands<'a> {
    type Item = Args<'a>;

    fn next(&mut self) -> Option<Args<'a>> {
        let (count, after_header) = header(self.rest, b'*')?;
        let args = Args {
            rest: after_header,
            remaining: count,
        };
        // Find where the next command starts by walking the arguments' headers (their bytes are
        // skipped, not read).
        let mut walker = args.clone();
        while walker.remaining > 0 {
            if walker.next().is_none() {
                // Malformed: yield what can be read of this command, then stop.
                self.rest = &[];
                return Some(args);
            }
        }
        self.rest = walker.rest;
        Some(args)
    }
}

/// Iterator over the arguments (name first) of one packed command.
#[derive(Clone, Debug, Default)]
pub(crate) struct Args<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let Some((len, after_header)) = header(self.rest, b'$') else {
            self.stop();
            return None;
        };
        let Some(end) = len.checked_add(2) else {
            self.stop();
            return None;
        };
        match (after_header.get(..len), after_header.get(len..end)) {
            (Some(arg), Some(b"\r\n")) => {
                self.rest = &after_header[end..];
                self.remaining -= 1;
                Some(arg)
            }
            _ => {
                self.stop();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // The header's count is a claim, not a promise: only the upper bound is given.
        (0, Some(self.remaining))
    }
}

impl Args<'_> {
    fn stop(&mut self) {
        self.remaining = 0;
        self.rest = &[];
    }
}

/// Parses `{marker}{decimal}\r\n` at the start of `bytes`.
fn header(bytes: &[u8], marker: u8) -> Option<(usize, &[u8])> {
    let rest = bytes.strip_prefix(&[marker])?;
    let digits = rest
        .iter()
        .take(MAX_HEADER_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > MAX_HEADER_DIGITS {
        return None;
    }
    let mut value: usize = 0;
    for &d in &rest[..digits] {
        value = value.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
    }
    let after = rest[digits..].strip_prefix(b"\r\n")?;
    Some((value, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
        commands(bytes)
            .map(|c| c.map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn reads_what_redis_packs() {
        let packed = redis::cmd("SET")
            .arg("k")
            .arg(b"\x00\r\n")
            .get_packed_command();
        assert_eq!(
            parse(&packed),
            vec![vec![b"SET".to_vec(), b"k".to_vec(), b"\x00\r\n".to_vec()]]
        );

        let mut pipe = redis::pipe();
        pipe.atomic().set("a", 1).get("a").cmd("PING");
        let packed = pipe.get_packed_pipeline();
        let names: Vec<Vec<u8>> = commands(&packed)
            .map(|mut c| c.next().unwrap().to_vec())
            .collect();
        assert_eq!(
            names,
            vec![
                b"MULTI".to_vec(),
                b"SET".to_vec(),
                b"GET".to_vec(),
                b"PING".to_vec(),
                b"EXEC".to_vec()
            ]
        );
    }

    #[test]
    fn empty_arguments_and_commands() {
        assert_eq!(parse(b"*0\r\n*1\r\n$0\r\n\r\n"), vec![vec![], vec![vec![]]]);
        assert!(parse(b"").is_empty());
    }

    #[test]
    fn malformed_input_stops_without_panicking() {
        for bad in [
            &b"*"[..],
            b"*x\r\n",
            b"*1\r",
            b"*1\r\n$",
            b"*1\r\n$5\r\nab",
            b"*1\r\n$2\r\nabXY",
            b"*2\r\n$1\r\na\r\n",
            b"*99999999999999999999999\r\n",
            b"*1\r\n$18446744073709551615\r\n",
            b"*1\r\n$18446744073709551614\r\n",
            b"+OK\r\n",
        ] {
            let _ = parse(bad);
        }
        // A truncated second argument keeps the first.
        assert_eq!(
            parse(b"*2\r\n$1\r\na\r\n$9\r\nb"),
            vec![vec![b"a".to_vec()]]
        );
        // Garbage after a good command ends the iteration.
        assert_eq!(parse(b"*1\r\n$1\r\na\r\ngarbage").len(), 1);
    }

    #[test]
    fn size_hint_never_overclaims() {
        let packed = b"*3\r\n$1\r\na\r\n";
        let args = commands(packed).next().unwrap();
        assert_eq!(args.size_hint(), (0, Some(3)));
        assert_eq!(args.count(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            for cmd in commands(&bytes) {
                for arg in cmd {
                    proptest::prop_assert!(arg.len() <= bytes.len());
                }
            }
        }

        #[test]
        fn round_trips(args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..16), 1..8)) {
            let mut cmd = redis::Cmd::new();
            for a in &args {
                cmd.arg(a.as_slice());
            }
            let packed = cmd.get_packed_command();
            let parsed = parse(&packed);
            proptest::prop_assert_eq!(parsed, vec![args]);
        }
    }
}
