//! [`LapinTelemetry`]: the configuration and instruments shared by every instrumented channel,
//! consumer and delivery.

use std::fmt;
use std::sync::{Arc, OnceLock};

use lapin::protocol::AMQPErrorKind;
use lapin::{Channel, Consumer, ErrorKind};
use opentelemetry::{KeyValue, StringValue};
use tracewire_shared::config::Domain;
use tracewire_shared::metrics::MessagingMetrics;
use tracewire_shared::record::Failure;
use tracewire_shared::semconv::{self, messaging};
use tracewire_shared::value::shared_str;
use tracewire_shared::{Config, Instrumentation};

use crate::destination;
use crate::destinations::{Destination, Destinations};
use crate::{InstrumentedChannel, InstrumentedConsumer};

/// The instrumentation settings for lapin: a [`Config`] (providers, propagator, hooks, opt-ins) and
/// the broker's address for `server.address` / `server.port`. Cheap to clone; build it once and wrap
/// every channel with it.
///
/// ```
/// use tracewire_lapin::LapinTelemetry;
/// use tracewire_shared::Config;
///
/// let telemetry = LapinTelemetry::builder()
///     .config(Config::new())
///     // Only host and port are kept: the credentials never reach an attribute.
///     .uri("amqp://guest:guest@rabbit.internal:5672/%2f")
///     .build();
/// assert_eq!(telemetry.server(), Some(("rabbit.internal", 5672)));
/// ```
#[derive(Clone)]
pub struct LapinTelemetry {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for LapinTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LapinTelemetry")
            .field("config", self.shared.inst.config())
            .field("server", &self.shared.server)
            .finish()
    }
}

impl Default for LapinTelemetry {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl LapinTelemetry {
    /// A builder with the defaults: global providers and propagator, no server attributes.
    pub fn builder() -> LapinTelemetryBuilder {
        LapinTelemetryBuilder::default()
    }

    /// Instruments `channel`.
    ///
    /// ```no_run
    /// # async fn example(connection: lapin::Connection) -> lapin::Result<()> {
    /// use tracewire_lapin::LapinTelemetry;
    ///
    /// let telemetry = LapinTelemetry::builder().uri("amqp://127.0.0.1:5672/%2f").build();
    /// let channel = telemetry.channel(connection.create_channel().await?);
    /// # Ok(()) }
    /// ```
    pub fn channel(&self, channel: Channel) -> InstrumentedChannel {
        InstrumentedChannel::with_telemetry(channel, self)
    }

    /// Instruments a consumer created with lapin directly. Prefer
    /// [`InstrumentedChannel::basic_consume`]: a consumer made there also knows its channel, so a
    /// [`TaskRunner`](crate::TaskRunner) can cancel it cleanly on shutdown, and it knows whether the
    /// consumer acknowledges automatically (`no_ack`).
    ///
    /// ```no_run
    /// # async fn example(channel: lapin::Channel) -> lapin::Result<()> {
    /// use lapin::{options::BasicConsumeOptions, types::FieldTable};
    /// use tracewire_lapin::LapinTelemetry;
    ///
    /// let consumer = channel
    ///     .basic_consume("jobs".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
    ///     .await?;
    /// let consumer = LapinTelemetry::default().consumer(consumer);
    /// # Ok(()) }
    /// ```
    pub fn consumer(&self, consumer: Consumer) -> InstrumentedConsumer {
        InstrumentedConsumer::new(consumer, self.shared.clone(), None, false)
    }

    /// Instruments one delivery received from `queue` outside an [`InstrumentedConsumer`], for
    /// consumers driven by a lapin `ConsumerDelegate` (`Consumer::set_delegate`). The process span
    /// starts now, exactly as for a delivery an [`InstrumentedConsumer`] yields.
    ///
    /// ```
    /// use lapin::message::Delivery;
    /// use lapin::options::BasicAckOptions;
    /// use tracewire_lapin::LapinTelemetry;
    ///
    /// # futures_util::FutureExt::now_or_never(async {
    /// let raw = Delivery::mock(1, "".into(), "jobs".into(), false, b"hi".to_vec());
    /// let delivery = LapinTelemetry::default().delivery(raw, "jobs");
    /// assert!(delivery.ack(BasicAckOptions::default()).await.unwrap());
    /// assert!(delivery.is_settled());
    /// # });
    /// ```
    pub fn delivery(
        &self,
        delivery: lapin::message::Delivery,
        queue: &str,
    ) -> crate::InstrumentedDelivery {
        crate::InstrumentedDelivery::new(delivery, &self.shared, queue, false)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.shared.inst.config()
    }

    /// The broker's host and port recorded as `server.address` / `server.port`, if known.
    pub fn server(&self) -> Option<(&str, u16)> {
        self.shared.server.as_ref().map(|(h, p)| (h.as_str(), *p))
    }
}

/// Builds a [`LapinTelemetry`].
///
/// ```
/// use tracewire_lapin::LapinTelemetry;
/// use tracewire_shared::{Config, semconv};
///
/// let telemetry = LapinTelemetry::builder()
///     .config(Config::new().with_opt_in(semconv::MESSAGING_MESSAGE_BODY_SIZE))
///     .server("127.0.0.1", 5672)
///     .build();
/// assert!(telemetry.config().is_opted_in(semconv::MESSAGING_MESSAGE_BODY_SIZE));
/// ```
#[derive(Debug, Default)]
pub struct LapinTelemetryBuilder {
    config: Option<Config>,
    server: Option<(String, u16)>,
}

impl LapinTelemetryBuilder {
    /// The shared tracewire options (providers, propagator, hooks, opt-ins).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Takes `server.address` and `server.port` from the AMQP URI the connection uses. Only the host
    /// and port are kept (never the user name or password); a URI lapin cannot parse is ignored.
    pub fn uri(mut self, uri: &str) -> Self {
        if let Ok(parsed) = uri.parse::<lapin::uri::AMQPUri>() {
            self.server = Some((parsed.authority.host, parsed.authority.port));
        }
        self
    }

    /// Sets `server.address` and `server.port` explicitly.
    pub fn server(mut self, host: impl Into<String>, port: u16) -> Self {
        self.server = Some((host.into(), port));
        self
    }

    /// Builds the telemetry.
    pub fn build(self) -> LapinTelemetry {
        let config = self.config.unwrap_or_default();
        let inst = Instrumentation::new(
            config,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Messaging,
        );
        let server_attributes = self
            .server
            .as_ref()
            .map(|(host, port)| {
                vec![
                    KeyValue::new(semconv::SERVER_ADDRESS, shared_str(host.clone())),
                    KeyValue::new(semconv::SERVER_PORT, i64::from(*port)),
                ]
            })
            .unwrap_or_default();
        LapinTelemetry {
            shared: Arc::new(Shared {
                inst,
                metrics: OnceLock::new(),
                server: self.server,
                server_attributes,
                published: Destinations::new(messaging::SEND, operation::PUBLISH),
                processed: Destinations::new(messaging::PROCESS, operation::PROCESS),
            }),
        }
    }
}

/// What every instrumented object of one [`LapinTelemetry`] shares.
pub(crate) struct Shared {
    pub(crate) inst: Instrumentation,
    metrics: OnceLock<MessagingMetrics>,
    server: Option<(String, u16)>,
    server_attributes: Vec<KeyValue>,
    published: Destinations,
    processed: Destinations,
}

/// `messaging.operation.name` values.
pub(crate) mod operation {
    pub(crate) const PUBLISH: &str = "publish";
    pub(crate) const PROCESS: &str = "process";
    pub(crate) const RECEIVE: &str = "receive";
}

impl Shared {
    /// The instruments, created on first use (so a global meter provider installed late is honoured),
    /// or `None` when metrics are off.
    pub(crate) fn metrics(&self) -> Option<&MessagingMetrics> {
        if !self.inst.config().metrics_enabled() {
            return None;
        }
        Some(
            self.metrics
                .get_or_init(|| MessagingMetrics::new(self.inst.meter())),
        )
    }

    pub(crate) fn metrics_enabled(&self) -> bool {
        self.inst.config().metrics_enabled()
    }

    /// The attributes every span carries: `messaging.system`, `messaging.operation.*`, server.
    pub(crate) fn push_common(
        &self,
        attrs: &mut Vec<KeyValue>,
        operation_type: &'static str,
        operation_name: &'static str,
    ) {
        attrs.push(KeyValue::new(
            semconv::MESSAGING_SYSTEM,
            messaging::RABBITMQ,
        ));
        attrs.push(KeyValue::new(
            semconv::MESSAGING_OPERATION_TYPE,
            operation_type,
        ));
        attrs.push(KeyValue::new(
            semconv::MESSAGING_OPERATION_NAME,
            operation_name,
        ));
        attrs.extend(self.server_attributes.iter().cloned());
    }

    /// The destination a message published to `exchange` with `routing_key` goes to.
    pub(crate) fn published_to(&self, exchange: &str, routing_key: &str) -> Arc<Destination> {
        self.published.get(self, |name| {
            destination::write_producer(name, exchange, routing_key);
        })
    }

    /// The destination a message delivered from `exchange` with `routing_key` to `queue` came from.
    pub(crate) fn processed_from(
        &self,
        exchange: &str,
        routing_key: &str,
        queue: &str,
    ) -> Arc<Destination> {
        self.processed.get(self, |name| {
            destination::write_consumer(name, exchange, routing_key, queue);
        })
    }

    /// Low-cardinality metric attributes.
    pub(crate) fn metric_attributes(
        &self,
        operation_type: Option<&'static str>,
        operation_name: &'static str,
        destination: Option<&StringValue>,
        error_type: Option<&str>,
    ) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(4 + self.server_attributes.len());
        attrs.push(KeyValue::new(
            semconv::MESSAGING_SYSTEM,
            messaging::RABBITMQ,
        ));
        if let Some(t) = operation_type {
            attrs.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, t));
        }
        attrs.push(KeyValue::new(
            semconv::MESSAGING_OPERATION_NAME,
            operation_name,
        ));
        if let Some(d) = destination {
            attrs.push(KeyValue::new(
                semconv::MESSAGING_DESTINATION_NAME,
                d.clone(),
            ));
        }
        attrs.extend(self.server_attributes.iter().cloned());
        if let Some(e) = error_type {
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, e.to_owned()));
        }
        attrs
    }
}

/// A lapin error as a span failure: `error.type` is the AMQP reply name (`NOT-FOUND`,
/// `PRECONDITION-FAILED`, …) for broker errors, a short kind otherwise.
pub(crate) fn failure(error: &lapin::Error) -> Failure<'static> {
    let error_type: String = match error.kind() {
        ErrorKind::ProtocolError(e) => amqp_error_type(e.kind()),
        ErrorKind::InvalidChannelState(..) => "invalid_channel_state".into(),
        ErrorKind::InvalidConnectionState(_) => "invalid_connection_state".into(),
        ErrorKind::InvalidChannel(_) => "invalid_channel".into(),
        ErrorKind::IOError(_) => "io".into(),
        ErrorKind::RuntimeShutdownError(_) => "runtime_shutdown".into(),
        ErrorKind::ParsingError(_) => "parsing".into(),
        ErrorKind::SerialisationError(_) => "serialisation".into(),
        ErrorKind::MissingHeartbeatError => "missing_heartbeat".into(),
        ErrorKind::ChannelsLimitReached => "channels_limit_reached".into(),
        _ => semconv::ERROR_TYPE_OTHER.into(),
    };
    Failure::new(error_type, error.to_string()).with_exception_type("lapin::Error")
}

/// The AMQP reply name of a broker error (`NOT-FOUND`, `NO-ROUTE`, …), for `error.type`.
pub(crate) fn amqp_error_type(kind: &AMQPErrorKind) -> String {
    match kind {
        AMQPErrorKind::Soft(s) => s.to_string(),
        AMQPErrorKind::Hard(h) => h.to_string(),
    }
}
