//! Property tests for the Redis command sanitizer and the URL redactor: secrets never leak, any
//! input is handled without panicking, and output stays within its limit.

use proptest::prelude::*;
use tracewire_shared::sanitize::{redis, url::redact};

const MARKER: &str = "SECRETMARK";

/// Bytes that never contain the marker: keys, fields, channels, parameter and user names.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9:_.-]{0,24}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..32),
    ]
    .prop_filter("names carry no marker", |n| {
        !n.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
    })
}

/// Arbitrary bytes around the marker: values, members, messages, passwords.
fn secret() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut before, after)| {
            before.extend_from_slice(MARKER.as_bytes());
            before.extend(after);
            before
        })
}

fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec((name(), secret()), 1..6)
}

fn secrets() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(secret(), 1..6)
}

/// A command that carries the marker in every value and nowhere else.
fn secret_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    fn cmd(parts: &[&[u8]], rest: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).chain(rest).collect()
    }
    fn flatten(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> impl Iterator<Item = Vec<u8>> {
        pairs.into_iter().flat_map(|(k, v)| [k, v])
    }
    prop_oneof![
        (name(), secret(), proptest::option::of(Just(()))).prop_map(|(k, v, ex)| {
            let opts = ex
                .map(|()| [b"EX".to_vec(), b"10".to_vec()])
                .into_iter()
                .flatten();
            cmd(&[b"SET", &k, &v], opts)
        }),
        (name(), pairs()).prop_map(|(h, p)| cmd(&[b"HSET", &h], flatten(p))),
        pairs().prop_map(|p| cmd(&[b"MSET"], flatten(p))),
        secrets().prop_map(|s| cmd(&[b"AUTH"], s)),
        (name(), secret()).prop_map(|(ch, msg)| cmd(&[b"PUBLISH", &ch], [msg])),
        (name(), secrets()).prop_map(|(k, s)| cmd(&[b"LPUSH", &k], s)),
        (name(), secrets()).prop_map(|(k, s)| cmd(&[b"SADD", &k], s)),
        // Both scores and members secret…
        (name(), secrets()).prop_map(|(z, s)| cmd(&[b"ZADD", &z], s)),
        // …or only the members.
        (name(), pairs()).prop_map(|(z, p)| cmd(&[b"zadd", &z], flatten(p))),
        pairs().prop_map(|p| cmd(&[b"CONFIG", b"SET"], flatten(p))),
        (name(), secrets()).prop_map(|(user, rules)| cmd(&[b"ACL", b"SETUSER", &user], rules)),
        (secret(), secret(), proptest::option::of(name())).prop_map(|(user, pw, client)| {
            let setname = client
                .map(|c| [b"SETNAME".to_vec(), c])
                .into_iter()
                .flatten();
            cmd(&[b"HELLO", b"3", b"AUTH", &user, &pw], setname)
        }),
        (secret(), secret()).prop_map(|(user, pw)| cmd(&[b"hello", b"AUTH", &user, &pw], [])),
        (secret(), proptest::collection::vec(name(), 0..4), secrets()).prop_map(
            |(script, keys, argv)| {
                let numkeys = keys.len().to_string().into_bytes();
                cmd(&[b"EVAL", &script, &numkeys], keys.into_iter().chain(argv))
            }
        ),
        (name(), name(), secret()).prop_map(|(host, key, pw)| {
            cmd(
                &[
                    b"MIGRATE", &host, b"6379", &key, b"0", b"5000", b"AUTH", &pw,
                ],
                [],
            )
        }),
        (name(), name(), secret()).prop_map(|(master, option, value)| {
            cmd(&[b"SENTINEL", b"SET", &master, &option, &value], [])
        }),
        (name(), secrets()).prop_map(|(unknown, s)| {
            let mut name = b"X.".to_vec();
            name.extend(unknown);
            cmd(&[&name], s)
        }),
    ]
}

/// A command name from the rule table (or not), then arbitrary arguments.
fn any_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let names = prop::sample::select(vec![
        "GET", "set", "HSET", "MSET", "AUTH", "HELLO", "EVAL", "evalsha", "FCALL", "CONFIG", "ACL",
        "SENTINEL", "SCRIPT", "FUNCTION", "MODULE", "MIGRATE", "ZADD", "XADD", "PING", "CLIENT",
        "UNKNOWN",
    ]);
    (
        names,
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
    )
        .prop_map(|(name, rest)| {
            std::iter::once(name.as_bytes().to_vec())
                .chain(rest)
                .collect()
        })
}

fn text(args: &[Vec<u8>]) -> String {
    redis::sanitize_command(args.iter().map(Vec::as_slice))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn redis_values_never_leak(args in secret_command()) {
        let out = text(&args);
        prop_assert!(!out.contains(MARKER), "{out:?} leaks the marker of {args:?}");
    }

    #[test]
    fn redis_eval_values_never_leak_at_any_limit(
        script in secret(),
        keys in proptest::collection::vec(name(), 0..4),
        argv in proptest::collection::vec(secret(), 0..4),
        malformed in any::<bool>(),
        limit in 0usize..400,
    ) {
        // Either `numkeys` is right, or it claims more keys than there are arguments (a malformed
        // command, where what looks like keys may be values).
        let numkeys = if malformed { keys.len() + argv.len() + 1 } else { keys.len() };
        let numkeys = numkeys.to_string().into_bytes();
        let args: Vec<Vec<u8>> = [b"EVAL".to_vec(), script, numkeys]
            .into_iter()
            .chain(keys)
            .chain(argv)
            .collect();
        let out = redis::sanitize_command_with_limit(args.iter().map(Vec::as_slice), limit);
        prop_assert!(out.len() <= limit);
        prop_assert!(!out.contains(MARKER), "{out:?} leaks the marker of {args:?}");
    }

    #[test]
    fn redis_arbitrary_input_is_bounded(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..64),
        limit in 0usize..2048,
    ) {
        let out = redis::sanitize_command_with_limit(args.iter().map(Vec::as_slice), limit);
        prop_assert!(out.len() <= limit);
        if args.is_empty() {
            prop_assert_eq!(out, "");
        }
        if let Some(first) = args.first() {
            prop_assert!(redis::command_name(first).len() <= 64);
        }
        let slices: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let _ = redis::stored_procedure(&slices);
    }

    #[test]
    fn redis_known_commands_with_arbitrary_arguments_are_bounded(
        args in any_command(),
        limit in 0usize..4096,
    ) {
        let out = redis::sanitize_command_with_limit(args.iter().map(Vec::as_slice), limit);
        prop_assert!(out.len() <= limit);
        let full = text(&args);
        prop_assert!(full.starts_with(&out), "{out:?} is not a prefix of {full:?}");
    }

    #[test]
    fn url_secrets_never_leak(
        user in "[a-z0-9._~-]{0,10}",
        pw_affix in ("[a-zA-Z0-9 !$&'()*+,;=:@/?#%\\[\\]-]{0,8}", "[a-zA-Z0-9 !$&'()*+,;=:@/?#%-]{0,8}"),
        host in "[a-z][a-z0-9]{0,15}(\\.[a-z]{2,6}){0,2}",
        port in proptest::option::of(1u16..=65535),
        path in proptest::collection::vec("[a-zA-Z0-9._~-]{0,8}", 0..4),
        signed in proptest::collection::vec(
            (
                prop::sample::select(tracewire_shared::sanitize::url::DEFAULT_REDACTED_QUERY_PARAMS),
                any::<bool>(),
                ".{0,8}",
                ".{0,8}",
            ),
            1..4,
        ),
        plain in proptest::collection::vec(
            ("[a-z]{1,8}".prop_filter("not a redacted key", |k| k != "sig"), "[a-zA-Z0-9 &=+%/-]{0,12}"),
            0..4,
        ),
        fragment in proptest::option::of(".{0,8}"),
    ) {
        use url::form_urlencoded::byte_serialize;
        let enc = |s: &str| byte_serialize(s.as_bytes()).collect::<String>();

        let password = format!("{}{MARKER}{}", pw_affix.0, pw_affix.1);
        let mut query = Vec::new();
        for (i, (key, value)) in plain.iter().enumerate() {
            query.push(format!("{key}={}", enc(value)));
            if let Some((param, percent_key, before, after)) = signed.get(i) {
                let key = if *percent_key { param.replace('-', "%2D") } else { param.to_string() };
                query.push(format!("{key}={}", enc(&format!("{before}{MARKER}{after}"))));
            }
        }
        for (param, _, before, after) in signed.iter().skip(plain.len()) {
            query.push(format!("{param}={}", enc(&format!("{before}{MARKER}{after}"))));
        }
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let mut raw = format!(
            "https://{user}:{}@{host}{port}/{}?{}",
            enc(&password),
            path.join("/"),
            query.join("&"),
        );
        if let Some(fragment) = fragment {
            raw.push('#');
            raw.push_str(&fragment);
            raw.push_str(MARKER);
        }

        let parsed = url::Url::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert!(parsed.password().is_some_and(|p| p.contains(MARKER)));
        let out = redact(&parsed);
        prop_assert!(!out.contains(MARKER), "{out:?} leaks the marker of {raw:?}");
        prop_assert!(out.starts_with("https://REDACTED:REDACTED@"), "{out}");
        for (key, value) in &plain {
            let kept = format!("{key}={}", enc(value));
            prop_assert!(out.contains(&kept), "{out:?} lost {kept:?}");
        }
    }
}
