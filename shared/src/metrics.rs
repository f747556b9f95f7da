//! The metric instruments of the semantic conventions, with their names, units and bucket boundaries.
//!
//! Each adapter creates the instrument set of its domain once from its `Meter`
//! and records into it with low-cardinality attributes only (never `db.query.text`, never `url.full`).
//! Pools report their state through [`observe_pool`].
//!
//! ```
//! use opentelemetry::{KeyValue, metrics::MeterProvider};
//! use opentelemetry_sdk::metrics::SdkMeterProvider;
//! use tracewire_shared::{metrics::DbClientMetrics, semconv};
//!
//! let provider = SdkMeterProvider::builder().build();
//! let db = DbClientMetrics::new(&provider.meter("example"));
//! db.operation_duration.record(0.004, &[KeyValue::new(semconv::DB_SYSTEM_NAME, "postgresql")]);
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableUpDownCounter, UpDownCounter};

use crate::semconv::{self, metric};

/// Bucket boundaries of `db.client.operation.duration` and the pool timing histograms, in seconds.
pub const DB_DURATION_BOUNDARIES: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Bucket boundaries of the HTTP and messaging duration histograms, in seconds.
pub const HTTP_DURATION_BOUNDARIES: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket boundaries of `db.client.response.returned_rows`.
pub const RETURNED_ROWS_BOUNDARIES: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

fn seconds(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
    boundaries: &[f64],
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(boundaries.to_vec())
        .build()
}

/// Database client operation instruments.
///
/// ```
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use tracewire_shared::metrics::DbClientMetrics;
///
/// let m = DbClientMetrics::new(&SdkMeterProvider::builder().build().meter("x"));
/// m.returned_rows.record(3, &[]);
/// ```
#[derive(Clone, Debug)]
pub struct DbClientMetrics {
    /// `db.client.operation.duration` (s).
    pub operation_duration: Histogram<f64>,
    /// `db.client.response.returned_rows` ({row}), recorded when opted in.
    pub returned_rows: Histogram<u64>,
}

impl DbClientMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            operation_duration: seconds(
                meter,
                metric::DB_CLIENT_OPERATION_DURATION,
                "Duration of database client operations.",
                DB_DURATION_BOUNDARIES,
            ),
            returned_rows: meter
                .u64_histogram(metric::DB_CLIENT_RESPONSE_RETURNED_ROWS)
                .with_unit("{row}")
                .with_description(
                    "The actual number of records returned by the database operation.",
                )
                .with_boundaries(RETURNED_ROWS_BOUNDARIES.to_vec())
                .build(),
        }
    }
}

/// HTTP client instruments.
///
/// ```
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use tracewire_shared::metrics::HttpClientMetrics;
///
/// let m = HttpClientMetrics::new(&SdkMeterProvider::builder().build().meter("x"));
/// m.request_duration.record(0.02, &[]);
/// ```
#[derive(Clone, Debug)]
pub struct HttpClientMetrics {
    /// `http.client.request.duration` (s).
    pub request_duration: Histogram<f64>,
    /// `http.client.active_requests` ({request}), recorded when opted in.
    pub active_requests: UpDownCounter<i64>,
}

impl HttpClientMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            request_duration: seconds(
                meter,
                metric::HTTP_CLIENT_REQUEST_DURATION,
                "Duration of HTTP client requests.",
                HTTP_DURATION_BOUNDARIES,
            ),
            active_requests: meter
                .i64_up_down_counter(metric::HTTP_CLIENT_ACTIVE_REQUESTS)
                .with_unit("{request}")
                .with_description("Number of active HTTP requests.")
                .build(),
        }
    }
}

/// Messaging client instruments.
///
/// ```
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use tracewire_shared::metrics::MessagingMetrics;
///
/// let m = MessagingMetrics::new(&SdkMeterProvider::builder().build().meter("x"));
/// m.sent_messages.add(1, &[]);
/// ```
#[derive(Clone, Debug)]
pub struct MessagingMetrics {
    /// `messaging.client.operation.duration` (s): send, receive, settle.
    pub operation_duration: Histogram<f64>,
    /// `messaging.process.duration` (s).
    pub process_duration: Histogram<f64>,
    /// `messaging.client.sent.messages` ({message}).
    pub sent_messages: Counter<u64>,
    /// `messaging.client.consumed.messages` ({message}).
    pub consumed_messages: Counter<u64>,
}

impl MessagingMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            operation_duration: seconds(
                meter,
                metric::MESSAGING_CLIENT_OPERATION_DURATION,
                "Duration of messaging operation initiated by a producer or consumer client.",
                HTTP_DURATION_BOUNDARIES,
            ),
            process_duration: seconds(
                meter,
                metric::MESSAGING_PROCESS_DURATION,
                "Duration of processing operation.",
                HTTP_DURATION_BOUNDARIES,
            ),
            sent_messages: meter
                .u64_counter(metric::MESSAGING_CLIENT_SENT_MESSAGES)
                .with_unit("{message}")
                .with_description("Number of messages producer attempted to send to the broker.")
                .build(),
            consumed_messages: meter
                .u64_counter(metric::MESSAGING_CLIENT_CONSUMED_MESSAGES)
                .with_unit("{message}")
                .with_description("Number of messages that were delivered to the application.")
                .build(),
        }
    }
}

/// A pool's state at one moment; `None` for what the pool does not expose.
///
/// ```
/// use tracewire_shared::metrics::PoolSnapshot;
///
/// let s = PoolSnapshot { idle: Some(3), used: Some(2), max: Some(10), ..PoolSnapshot::default() };
/// assert_eq!(s.pending_requests, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// Idle connections.
    pub idle: Option<u64>,
    /// Connections in use.
    pub used: Option<u64>,
    /// The most connections the pool opens.
    pub max: Option<u64>,
    /// The most idle connections kept.
    pub idle_max: Option<u64>,
    /// The fewest idle connections kept.
    pub idle_min: Option<u64>,
    /// Requests waiting for a connection.
    pub pending_requests: Option<u64>,
}

/// Pool instruments recorded by the adapter as events happen (the gauges come from [`observe_pool`]).
///
/// ```
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use tracewire_shared::metrics::PoolMetrics;
///
/// let pool = PoolMetrics::new(&SdkMeterProvider::builder().build().meter("x"), "main");
/// pool.wait_time.record(0.0002, pool.attributes());
/// ```
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    /// `db.client.connection.wait_time` (s): time to obtain a connection.
    pub wait_time: Histogram<f64>,
    /// `db.client.connection.use_time` (s): time a connection was held.
    pub use_time: Histogram<f64>,
    /// `db.client.connection.create_time` (s): time to open a connection.
    pub create_time: Histogram<f64>,
    /// `db.client.connection.timeouts` ({timeout}): acquisitions that timed out.
    pub timeouts: Counter<u64>,
    attributes: Arc<[KeyValue]>,
}

impl PoolMetrics {
    /// Creates the instruments on `meter` for the pool called `pool_name`.
    pub fn new(meter: &Meter, pool_name: impl Into<String>) -> Self {
        Self {
            wait_time: seconds(
                meter,
                metric::DB_CLIENT_CONNECTION_WAIT_TIME,
                "The time it took to obtain an open connection from the pool.",
                DB_DURATION_BOUNDARIES,
            ),
            use_time: seconds(
                meter,
                metric::DB_CLIENT_CONNECTION_USE_TIME,
                "The time between borrowing a connection and returning it to the pool.",
                DB_DURATION_BOUNDARIES,
            ),
            create_time: seconds(
                meter,
                metric::DB_CLIENT_CONNECTION_CREATE_TIME,
                "The time it took to create a new connection.",
                DB_DURATION_BOUNDARIES,
            ),
            timeouts: meter
                .u64_counter(metric::DB_CLIENT_CONNECTION_TIMEOUTS)
                .with_unit("{timeout}")
                .with_description("The number of connection timeouts that have occurred trying to obtain a connection from the pool.")
                .build(),
            attributes: Arc::new([KeyValue::new(semconv::DB_CLIENT_CONNECTION_POOL_NAME, pool_name.into())]),
        }
    }

    /// The attributes every pool measurement carries (`db.client.connection.pool.name`).
    pub fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
}

/// The observable pool instruments; dropping this handle does not stop the callbacks, so the snapshot
/// closure given to [`observe_pool`] should return `None` once its pool is gone.
#[derive(Debug)]
pub struct PoolObservers {
    _instruments: Vec<ObservableUpDownCounter<i64>>,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Registers `db.client.connection.count` (state `idle` / `used`), `.max`, `.idle.max`, `.idle.min` and
/// `.pending_requests` for the pool `pool_name`, observed through `snapshot` at each collection.
///
/// ```
/// use std::sync::{Arc, Weak};
/// use opentelemetry::metrics::MeterProvider;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use tracewire_shared::metrics::{PoolSnapshot, observe_pool};
///
/// let pool = Arc::new(()); // stands for the user's pool
/// let weak: Weak<()> = Arc::downgrade(&pool);
/// let _observers = observe_pool(&SdkMeterProvider::builder().build().meter("x"), "main", move || {
///     weak.upgrade().map(|_| PoolSnapshot { idle: Some(1), used: Some(0), max: Some(5), ..Default::default() })
/// });
/// ```
pub fn observe_pool(
    meter: &Meter,
    pool_name: impl Into<String>,
    snapshot: impl Fn() -> Option<PoolSnapshot> + Send + Sync + 'static,
) -> PoolObservers {
    let snapshot = Arc::new(snapshot);
    let pool_name: opentelemetry::Value = pool_name.into().into();
    let pool_attr = KeyValue::new(semconv::DB_CLIENT_CONNECTION_POOL_NAME, pool_name);
    let mut instruments = Vec::with_capacity(5);

    let (snap, pool) = (snapshot.clone(), pool_attr.clone());
    let idle_attrs = [
        pool.clone(),
        KeyValue::new(
            semconv::DB_CLIENT_CONNECTION_STATE,
            semconv::connection_state::IDLE,
        ),
    ];
    let used_attrs = [
        pool,
        KeyValue::new(
            semconv::DB_CLIENT_CONNECTION_STATE,
            semconv::connection_state::USED,
        ),
    ];
    instruments.push(
        meter
            .i64_observable_up_down_counter(metric::DB_CLIENT_CONNECTION_COUNT)
            .with_unit("{connection}")
            .with_description("The number of connections that are currently in state described by the state attribute.")
            .with_callback(move |obs| {
                if let Some(s) = snap() {
                    if let Some(idle) = s.idle {
                        obs.observe(clamp(idle), &idle_attrs);
                    }
                    if let Some(used) = s.used {
                        obs.observe(clamp(used), &used_attrs);
                    }
                }
            })
            .build(),
    );

    type Field = fn(&PoolSnapshot) -> Option<u64>;
    let gauges: [(&'static str, &'static str, Field); 4] = [
        (metric::DB_CLIENT_CONNECTION_MAX, "{connection}", |s| s.max),
        (metric::DB_CLIENT_CONNECTION_IDLE_MAX, "{connection}", |s| {
            s.idle_max
        }),
        (metric::DB_CLIENT_CONNECTION_IDLE_MIN, "{connection}", |s| {
            s.idle_min
        }),
        (
            metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS,
            "{request}",
            |s| s.pending_requests,
        ),
    ];
    for (name, unit, field) in gauges {
        let (snap, attrs) = (snapshot.clone(), [pool_attr.clone()]);
        instruments.push(
            meter
                .i64_observable_up_down_counter(name)
                .with_unit(unit)
                .with_callback(move |obs| {
                    if let Some(v) = snap().as_ref().and_then(field) {
                        obs.observe(clamp(v), &attrs);
                    }
                })
                .build(),
        );
    }
    PoolObservers {
        _instruments: instruments,
    }
}

/// Measures an operation's duration, only when metrics are on.
///
/// It reads the same wall clock as the span's timestamps, so an operation's start and end can be
/// handed to its span ([`SpanRequest::with_start_time`](crate::record::SpanRequest::with_start_time),
/// [`OperationSpan::end_ok_at`](crate::record::OperationSpan::end_ok_at)): the clock is read twice
/// per operation instead of four times, and the histogram agrees with the span. A clock stepped
/// backwards mid-operation gives a zero duration, never a negative one.
///
/// ```
/// use tracewire_shared::metrics::Timer;
///
/// let timer = Timer::start(true);
/// assert!(timer.elapsed_secs().unwrap() >= 0.0);
/// let end = timer.now().unwrap();
/// assert!(timer.elapsed_until(end).unwrap() <= timer.elapsed().unwrap());
/// assert_eq!(Timer::start(false).elapsed_secs(), None);
/// assert_eq!(Timer::start(false).started_at(), None);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Timer(Option<SystemTime>);

impl Timer {
    /// Starts timing when `enabled`.
    pub fn start(enabled: bool) -> Self {
        Self(enabled.then(SystemTime::now))
    }

    /// When timing started, when timing.
    pub fn started_at(&self) -> Option<SystemTime> {
        self.0
    }

    /// The current time, when timing: the end to pass to [`elapsed_until`](Self::elapsed_until) and
    /// to the span.
    pub fn now(&self) -> Option<SystemTime> {
        self.0.map(|_| SystemTime::now())
    }

    /// The time from start to `end`, when timing.
    pub fn elapsed_until(&self, end: SystemTime) -> Option<Duration> {
        self.0
            .map(|start| end.duration_since(start).unwrap_or_default())
    }

    /// The time from start to `end` in seconds, the unit of every duration histogram, when timing.
    /// `end` is what [`now`](Self::now) returned, so that the span can end at the same instant.
    ///
    /// ```
    /// use tracewire_shared::metrics::Timer;
    ///
    /// let timer = Timer::start(true);
    /// let end = timer.now();
    /// let secs = timer.elapsed_secs_until(end).unwrap();
    /// assert_eq!(secs, timer.elapsed_until(end.unwrap()).unwrap().as_secs_f64());
    /// assert_eq!(Timer::start(false).elapsed_secs_until(end), None);
    /// assert_eq!(timer.elapsed_secs_until(None), None);
    /// ```
    pub fn elapsed_secs_until(&self, end: Option<SystemTime>) -> Option<f64> {
        end.and_then(|end| self.elapsed_until(end))
            .map(|elapsed| elapsed.as_secs_f64())
    }

    /// The time since start, when timing.
    pub fn elapsed(&self) -> Option<Duration> {
        self.now().and_then(|end| self.elapsed_until(end))
    }

    /// The time since start in seconds, when timing.
    pub fn elapsed_secs(&self) -> Option<f64> {
        self.elapsed().map(|d| d.as_secs_f64())
    }
}
