//! The attribute keys, metric names and well-known values the adapters emit.
//!
//! Keys come from `opentelemetry-semantic-conventions` wherever it defines them, so a typo cannot
//! creep in; the few it lacks, and tracewire's own `tracewire.*` attributes, are defined here. The
//! crate targets semantic conventions [`SEMCONV_VERSION`]; spans and metrics carry [`SCHEMA_URL`].
//!
//! ```
//! use opentelemetry::KeyValue;
//! use tracewire_shared::semconv::{self, db_system};
//!
//! let kv = KeyValue::new(semconv::DB_SYSTEM_NAME, db_system::POSTGRESQL);
//! assert_eq!(kv.key.as_str(), "db.system.name");
//! ```

pub use opentelemetry_semantic_conventions::attribute::{
    DB_CLIENT_CONNECTION_POOL_NAME, DB_CLIENT_CONNECTION_STATE, DB_NAMESPACE,
    DB_OPERATION_BATCH_SIZE, DB_OPERATION_NAME, DB_QUERY_SUMMARY, DB_QUERY_TEXT,
    DB_RESPONSE_RETURNED_ROWS, DB_RESPONSE_STATUS_CODE, DB_STORED_PROCEDURE_NAME, DB_SYSTEM_NAME,
    ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE, HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL, HTTP_REQUEST_RESEND_COUNT, HTTP_RESPONSE_STATUS_CODE,
    MESSAGING_CONSUMER_GROUP_NAME, MESSAGING_DESTINATION_NAME, MESSAGING_MESSAGE_BODY_SIZE,
    MESSAGING_MESSAGE_CONVERSATION_ID, MESSAGING_MESSAGE_ID, MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE, MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
    MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG, MESSAGING_SYSTEM, NETWORK_PEER_ADDRESS,
    NETWORK_PEER_PORT, NETWORK_PROTOCOL_NAME, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS,
    SERVER_PORT, URL_FULL, URL_TEMPLATE, USER_AGENT_ORIGINAL,
};

/// The semantic conventions release tracewire targets.
pub const SEMCONV_VERSION: &str = "1.44.0";

/// The schema URL of [`SEMCONV_VERSION`], attached to every tracer's and meter's instrumentation scope.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.44.0";

/// Prefix of captured HTTP request headers: `http.request.header.<lower-case name>`.
pub const HTTP_REQUEST_HEADER_PREFIX: &str = "http.request.header.";

/// Prefix of captured HTTP response headers: `http.response.header.<lower-case name>`.
pub const HTTP_RESPONSE_HEADER_PREFIX: &str = "http.response.header.";

/// `tracewire.cancelled`: the operation's future or stream was dropped before it completed. The span
/// ends at drop without an error status.
pub const TRACEWIRE_CANCELLED: &str = "tracewire.cancelled";

/// `tracewire.health_check`: the operation is a pool health check (r2d2 checkout ping, verified
/// recycle), so dashboards can leave it out.
pub const TRACEWIRE_HEALTH_CHECK: &str = "tracewire.health_check";

/// `tracewire.messaging.outcome`: how a consumed message was settled (`ack`, `nack`, `reject`,
/// `dropped`).
pub const TRACEWIRE_MESSAGING_OUTCOME: &str = "tracewire.messaging.outcome";

/// `tracewire.messaging.requeue`: whether a nacked or rejected message was requeued.
pub const TRACEWIRE_MESSAGING_REQUEUE: &str = "tracewire.messaging.requeue";

/// Metric instrument names.
pub mod metric {
    pub use opentelemetry_semantic_conventions::metric::{
        DB_CLIENT_CONNECTION_COUNT, DB_CLIENT_CONNECTION_CREATE_TIME,
        DB_CLIENT_CONNECTION_IDLE_MAX, DB_CLIENT_CONNECTION_IDLE_MIN, DB_CLIENT_CONNECTION_MAX,
        DB_CLIENT_CONNECTION_PENDING_REQUESTS, DB_CLIENT_CONNECTION_TIMEOUTS,
        DB_CLIENT_CONNECTION_USE_TIME, DB_CLIENT_CONNECTION_WAIT_TIME,
        DB_CLIENT_OPERATION_DURATION, DB_CLIENT_RESPONSE_RETURNED_ROWS,
        HTTP_CLIENT_ACTIVE_REQUESTS, HTTP_CLIENT_REQUEST_DURATION,
        MESSAGING_CLIENT_CONSUMED_MESSAGES, MESSAGING_CLIENT_OPERATION_DURATION,
        MESSAGING_CLIENT_SENT_MESSAGES, MESSAGING_PROCESS_DURATION,
    };
}

/// Values of `db.system.name`.
pub mod db_system {
    /// PostgreSQL.
    pub const POSTGRESQL: &str = "postgresql";
    /// MySQL.
    pub const MYSQL: &str = "mysql";
    /// MariaDB.
    pub const MARIADB: &str = "mariadb";
    /// SQLite.
    pub const SQLITE: &str = "sqlite";
    /// Redis.
    pub const REDIS: &str = "redis";
    /// Any other SQL database.
    pub const OTHER_SQL: &str = "other_sql";
}

/// Values of `db.client.connection.state`.
pub mod connection_state {
    /// A connection sitting in the pool.
    pub const IDLE: &str = "idle";
    /// A connection checked out of the pool.
    pub const USED: &str = "used";
}

/// Values of `messaging.system` and `messaging.operation.type`.
pub mod messaging {
    /// `messaging.system` for RabbitMQ.
    pub const RABBITMQ: &str = "rabbitmq";
    /// `messaging.operation.type`: a message is sent to a destination.
    pub const SEND: &str = "send";
    /// `messaging.operation.type`: a message is pulled (`basic.get`).
    pub const RECEIVE: &str = "receive";
    /// `messaging.operation.type`: a delivered message is processed.
    pub const PROCESS: &str = "process";
    /// `messaging.operation.type`: a message is settled (ack, nack, reject).
    pub const SETTLE: &str = "settle";
    /// `messaging.destination.name` of RabbitMQ's default exchange with no routing key.
    pub const AMQ_DEFAULT: &str = "amq.default";
}

/// `error.type` when the error has no better low-cardinality name.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";

/// The pre-stable attribute names emitted next to the stable ones under
/// `OTEL_SEMCONV_STABILITY_OPT_IN=database/dup`, `http/dup` or `messaging/dup`.
///
/// ```
/// use tracewire_shared::semconv::{legacy, DB_QUERY_TEXT};
///
/// assert_eq!(legacy::database(DB_QUERY_TEXT), Some("db.statement"));
/// assert_eq!(legacy::database("db.query.summary"), None);
/// ```
pub mod legacy {
    /// The legacy name of a stable database attribute, if it had one.
    pub fn database(stable: &str) -> Option<&'static str> {
        Some(match stable {
            "db.system.name" => "db.system",
            "db.namespace" => "db.name",
            "db.query.text" => "db.statement",
            "db.operation.name" => "db.operation",
            "db.collection.name" => "db.sql.table",
            "server.address" => "net.peer.name",
            "server.port" => "net.peer.port",
            _ => return None,
        })
    }

    /// The legacy name of a stable HTTP client attribute, if it had one.
    pub fn http(stable: &str) -> Option<&'static str> {
        Some(match stable {
            "http.request.method" => "http.method",
            "http.response.status_code" => "http.status_code",
            "url.full" => "http.url",
            "server.address" => "net.peer.name",
            "server.port" => "net.peer.port",
            "network.protocol.version" => "net.protocol.version",
            "user_agent.original" => "http.user_agent",
            "http.request.resend_count" => "http.resend_count",
            _ => return None,
        })
    }

    /// The legacy name of a stable messaging attribute, if it had one.
    pub fn messaging(stable: &str) -> Option<&'static str> {
        Some(match stable {
            "messaging.operation.type" => "messaging.operation",
            "messaging.rabbitmq.destination.routing_key" => "messaging.rabbitmq.routing_key",
            "server.address" => "net.peer.name",
            "server.port" => "net.peer.port",
            _ => return None,
        })
    }

    /// Legacy values that were renamed together with their key (`send` was `publish`).
    pub fn messaging_value(stable_key: &str, value: &str) -> Option<&'static str> {
        match (stable_key, value) {
            ("messaging.operation.type", "send") => Some("publish"),
            _ => None,
        }
    }
}
