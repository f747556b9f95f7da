//! How a reply or an error ends a span: server errors (`-WRONGTYPE …`) arrive as
//! `Ok(Value::ServerError)` and are failures for the span, with the prefix as `error.type` and
//! `db.response.status_code`; client-side errors get a low-cardinality `error.type` from
//! [`redis::ErrorKind`].
//!
//! Operations are ended in place: they live in the command's future, and moving one out to end it
//! would copy it.

use redis::{ErrorKind, RedisError, ServerError, Value};
use tracewire_shared::db::{DbClient, DbOperation};
use tracewire_shared::record::Failure;
use tracewire_shared::semconv::ERROR_TYPE_OTHER;

/// Cap on an error prefix taken from the server (extension modules may send anything).
const MAX_CODE_LEN: usize = 64;

/// Ends `op` for the reply of one command.
#[inline(always)]
pub(crate) fn end_value(
    op: &mut DbOperation<'_>,
    client: &DbClient,
    result: &redis::RedisResult<Value>,
) {
    match result {
        Ok(Value::ServerError(err)) => end_server_error(op, client, err),
        Ok(_) => op.end_ok_in_place(None),
        Err(err) => end_redis_error(op, client, err),
    }
}

/// Ends `op` for the replies of a pipeline: the first server error among them (inside the `EXEC`
/// reply for a transaction) fails the span, as it fails `query_async` unless errors are ignored.
pub(crate) fn end_values(
    op: &mut DbOperation<'_>,
    client: &DbClient,
    result: &redis::RedisResult<Vec<Value>>,
) {
    match result {
        Ok(values) => match first_server_error(values) {
            Some(err) => end_server_error(op, client, err),
            None => op.end_ok_in_place(None),
        },
        Err(err) => end_redis_error(op, client, err),
    }
}

fn first_server_error(values: &[Value]) -> Option<&ServerError> {
    values.iter().find_map(|v| match v {
        Value::ServerError(err) => Some(err),
        // The `EXEC` reply of a transaction: one value per queued command.
        Value::Array(items) => items.iter().find_map(|item| match item {
            Value::ServerError(err) => Some(err),
            _ => None,
        }),
        _ => None,
    })
}

fn end_server_error(op: &mut DbOperation<'_>, client: &DbClient, err: &ServerError) {
    let code = bounded_code(err.code());
    let message = if op.is_recording() {
        client.sanitize_message(&err.to_string())
    } else {
        String::new()
    };
    op.end_error_in_place(&Failure::new(code, message).with_db_status_code(code));
}

fn end_redis_error(op: &mut DbOperation<'_>, client: &DbClient, err: &RedisError) {
    let message = if op.is_recording() {
        client.sanitize_message(&err.to_string())
    } else {
        String::new()
    };
    let failure = match err.code() {
        Some(code) => {
            let code = bounded_code(code);
            Failure::new(code, message).with_db_status_code(code)
        }
        None => Failure::new(error_kind(err), message),
    };
    op.end_error_in_place(&failure);
}

fn bounded_code(code: &str) -> &str {
    if code.is_empty() {
        return ERROR_TYPE_OTHER;
    }
    let mut end = code.len().min(MAX_CODE_LEN);
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    &code[..end]
}

/// A low-cardinality `error.type` for an error that did not come from the server.
pub(crate) fn error_kind(err: &RedisError) -> &'static str {
    match err.kind() {
        ErrorKind::Io if err.is_timeout() => "timeout",
        ErrorKind::Io => "io_error",
        ErrorKind::Parse => "parse_error",
        ErrorKind::AuthenticationFailed => "authentication_failed",
        ErrorKind::UnexpectedReturnType => "unexpected_return_type",
        ErrorKind::InvalidClientConfig => "invalid_client_config",
        ErrorKind::Client => "client_error",
        ErrorKind::Extension => "extension_error",
        ErrorKind::MasterNameNotFoundBySentinel => "master_name_not_found_by_sentinel",
        ErrorKind::NoValidReplicasFoundBySentinel => "no_valid_replicas_found_by_sentinel",
        ErrorKind::EmptySentinelList => "empty_sentinel_list",
        ErrorKind::ClusterConnectionNotFound => "cluster_connection_not_found",
        ErrorKind::RESP3NotSupported => "resp3_not_supported",
        ErrorKind::Server(_) => "response_error",
        _ => ERROR_TYPE_OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_low_cardinality() {
        let io: RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(error_kind(&io), "io_error");
        let timeout: RedisError = std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        assert_eq!(error_kind(&timeout), "timeout");
        let client: RedisError = (ErrorKind::Client, "bad").into();
        assert_eq!(error_kind(&client), "client_error");
        let parse: RedisError = (ErrorKind::Parse, "bad").into();
        assert_eq!(error_kind(&parse), "parse_error");
    }

    #[test]
    fn codes_are_capped() {
        assert_eq!(bounded_code("WRONGTYPE"), "WRONGTYPE");
        assert_eq!(bounded_code(""), ERROR_TYPE_OTHER);
        let long = "é".repeat(100);
        assert!(bounded_code(&long).len() <= MAX_CODE_LEN);
    }
}
