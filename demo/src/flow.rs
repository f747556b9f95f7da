//! The order flow: a client places an order with the shop's HTTP API, the API prices it (cache, then
//! catalog), reserves stock, stores it, caches it, audits it and publishes an event that a worker
//! confirms. One trace from the client's `checkout` span to the worker's write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_semantic_conventions::attribute as semconv;
use reqwest_middleware::ClientBuilder;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracewire_lapin::{RunnerHandle, Task, TaskRunner};
use tracewire_reqwest::{OtelMiddleware, RequestBuilderExt};
use tracewire_shared::config::Domain;
use tracewire_shared::context::FutureExt as _;
use tracewire_shared::record::{Failure, SpanRequest};
use tracewire_shared::{Config, Instrumentation};

use crate::backends::{Audit, Cache, Catalog, Events, Orders};
use crate::{Environment, Error};

/// How long the client waits for the worker to confirm the order.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// What the client orders.
///
/// ```
/// let order = tracewire_demo::Order::default();
/// assert_eq!(order.sku, "sku-42");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Who orders (a bound SQL parameter: never in a span).
    pub customer: String,
    /// What: `sku-42` (a towel) or `sku-7` (a guide), seeded in the catalog.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// A free-text note: stored with an inline SQL literal, cached in Redis and sent in the event
    /// body, and still never in a span.
    pub note: String,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            customer: "arthur.dent@example.com".to_owned(),
            sku: "sku-42".to_owned(),
            quantity: 2,
            note: "leave it with the Vogon next door".to_owned(),
        }
    }
}

/// What one run of the flow did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OrderReport {
    /// The trace every span of the run belongs to.
    pub trace_id: TraceId,
    /// The HTTP status the API answered.
    pub http_status: u16,
    /// The new order's id.
    pub order_id: i64,
    /// Its total.
    pub total_cents: i64,
    /// Its status at the end: `confirmed` once the worker processed the event, else `pending`.
    pub status: String,
    /// The orders database (`postgresql` or `sqlite`).
    pub orders_db: &'static str,
    /// The RabbitMQ queue the event went through, when the broker was used.
    pub queue: Option<String>,
}

/// The API's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Placed {
    order_id: i64,
    total_cents: i64,
    status: String,
}

/// The event the worker consumes.
#[derive(Debug, Serialize, Deserialize)]
struct OrderPlaced {
    order_id: i64,
    sku: String,
    quantity: u32,
    note: String,
}

struct Shop {
    server: Instrumentation,
    catalog: Catalog,
    orders: Orders,
    audit: Option<Audit>,
    cache: Option<Cache>,
    events: Option<Events>,
    confirmed: mpsc::UnboundedSender<i64>,
}

impl Shop {
    async fn place(&self, order: Order) -> Result<Placed, Error> {
        let quantity = i32::try_from(order.quantity).map_err(|_| "quantity too large")?;
        let cached = match &self.cache {
            Some(cache) => cache.price(&order.sku).await?,
            None => None,
        };
        let price_cents = match cached {
            Some(price) => price,
            None => {
                let product = self
                    .catalog
                    .product(order.sku.clone())
                    .await?
                    .ok_or("unknown product")?;
                if let Some(cache) = &self.cache {
                    cache.put_price(&order.sku, product.price_cents).await?;
                }
                product.price_cents
            }
        };
        if !self.catalog.reserve(order.sku.clone(), quantity).await? {
            return Err("out of stock".into());
        }
        let total_cents = price_cents * i64::from(quantity);
        let order_id = self
            .orders
            .insert(
                &order.customer,
                &order.sku,
                quantity,
                total_cents,
                &order.note,
            )
            .await?;
        let event = OrderPlaced {
            order_id,
            sku: order.sku,
            quantity: order.quantity,
            note: order.note,
        };
        let json = serde_json::to_string(&event)?;
        if let Some(cache) = &self.cache {
            cache.put_order(order_id, &json).await?;
        }
        if let Some(audit) = &self.audit {
            audit.record(order_id, "placed").await?;
        }
        if let Some(events) = &self.events {
            events
                .publish(format!("order-{order_id}"), json.as_bytes())
                .await?;
        }
        Ok(Placed {
            order_id,
            total_cents,
            status: "pending".to_owned(),
        })
    }

    /// The worker's side: confirm the order the event names.
    async fn confirm(&self, task: Task) -> Result<(), Error> {
        let event: OrderPlaced = serde_json::from_slice(&task.data)?;
        self.orders.confirm(event.order_id).await?;
        let _ = self.confirmed.send(event.order_id);
        Ok(())
    }
}

struct ApiError(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0.to_string()).into_response()
    }
}

async fn create_order(
    State(shop): State<Arc<Shop>>,
    Json(order): Json<Order>,
) -> Result<(StatusCode, Json<Placed>), ApiError> {
    match shop.place(order).await {
        Ok(placed) => Ok((StatusCode::CREATED, Json(placed))),
        Err(e) => Err(ApiError(e)),
    }
}

/// The SERVER span of every API request, continuing the caller's `traceparent`. The handler runs
/// inside its context, so every client span it makes (SQL, Redis, AMQP) is its child.
async fn server_span(
    State(shop): State<Arc<Shop>>,
    route: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let inst = &shop.server;
    let parent = inst
        .config()
        .propagator()
        .extract_headers(request.headers());
    let method = request.method().as_str().to_owned();
    let route = route.as_str().to_owned();
    let mut span = inst.start(
        SpanRequest::new(SpanKind::Server, format!("{method} {route}")).with_parent(&parent),
        |attrs| {
            attrs.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method.clone()));
            attrs.push(KeyValue::new(semconv::HTTP_ROUTE, route.clone()));
            attrs.push(KeyValue::new(
                semconv::URL_PATH,
                request.uri().path().to_owned(),
            ));
            attrs.push(KeyValue::new(semconv::URL_SCHEME, "http"));
            let version = match request.version() {
                http::Version::HTTP_2 => "2",
                _ => "1.1",
            };
            attrs.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
            let host = request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok());
            if let Some((address, port)) = host.and_then(|h| h.rsplit_once(':')) {
                attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.to_owned()));
                if let Ok(port) = port.parse::<i64>() {
                    attrs.push(KeyValue::new(semconv::SERVER_PORT, port));
                }
            }
        },
    );
    let response = next.run(request).with_context(span.context()).await;
    let status = response.status();
    span.set_attribute(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        // Server spans fail on 5xx only: a 4xx is the client's error.
        span.end_error(&Failure::new(
            status.as_str().to_owned(),
            status.canonical_reason().unwrap_or("server error"),
        ));
    } else {
        span.end_ok();
    }
    response
}

/// A running shop: stores, HTTP API and worker.
struct Running {
    shop: Arc<Shop>,
    addr: SocketAddr,
    stop_api: oneshot::Sender<()>,
    api: JoinHandle<()>,
    worker: Option<RunnerHandle>,
    confirmed: mpsc::UnboundedReceiver<i64>,
    config: Config,
}

impl Running {
    async fn start(env: &Environment, config: &Config) -> Result<Self, Error> {
        let (confirmed_tx, confirmed) = mpsc::unbounded_channel();
        let catalog = Catalog::open(config)?;
        let audit = match &env.mariadb {
            Some(url) => Some(Audit::connect(url, &env.run_id, config).await?),
            None => None,
        };
        let cache = match &env.redis {
            Some(url) => Some(Cache::connect(url, &env.run_id, config).await?),
            None => None,
        };
        let events = match &env.amqp {
            Some(url) => Some(Events::connect(url, &env.run_id, config).await?),
            None => None,
        };
        // Last, so a failure before it leaves no schema behind.
        let orders = match Orders::connect(env.postgres.as_deref(), &env.run_id, config).await {
            Ok(orders) => orders,
            Err(e) => {
                close_all(events.as_ref(), None, audit.as_ref(), None, &[], &[]).await;
                return Err(e);
            }
        };
        let shop = Arc::new(Shop {
            server: Instrumentation::new(
                config.clone(),
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                Domain::Http,
            ),
            catalog,
            orders,
            audit,
            cache,
            events,
            confirmed: confirmed_tx,
        });
        match Self::serve(shop.clone()).await {
            Ok((addr, stop_api, api, worker)) => Ok(Self {
                shop,
                addr,
                stop_api,
                api,
                worker,
                confirmed,
                config: config.clone(),
            }),
            Err(e) => {
                shop.close(&[], &[]).await;
                Err(e)
            }
        }
    }

    /// Starts the HTTP API and, with a broker, the worker.
    #[allow(clippy::type_complexity)]
    async fn serve(
        shop: Arc<Shop>,
    ) -> Result<
        (
            SocketAddr,
            oneshot::Sender<()>,
            JoinHandle<()>,
            Option<RunnerHandle>,
        ),
        Error,
    > {
        let worker = match &shop.events {
            Some(events) => {
                let consumer = events.consumer().await?;
                let worker_shop = shop.clone();
                Some(TaskRunner::new(consumer).run(move |task: Task| {
                    let shop = worker_shop.clone();
                    async move { shop.confirm(task).await.map_err(|e| e.to_string()) }
                }))
            }
            None => None,
        };
        let app = Router::new()
            .route("/orders", post(create_order))
            .route_layer(middleware::from_fn_with_state(shop.clone(), server_span))
            .with_state(shop);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_api, stopped) = oneshot::channel::<()>();
        let api = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok((addr, stop_api, api, worker))
    }

    /// The client's side: one `checkout` span around the HTTP call, then waiting for the worker.
    async fn checkout(&mut self, order: &Order) -> Result<OrderReport, Error> {
        let inst = Instrumentation::new(
            self.config.clone(),
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Http,
        );
        let root = inst.start(SpanRequest::new(SpanKind::Internal, "checkout"), |_| {});
        let trace_id = root
            .span_context()
            .map_or(TraceId::INVALID, |sc| sc.trace_id());
        let cx = root.context();
        let client = ClientBuilder::new(reqwest::Client::builder().no_proxy().build()?)
            .with(OtelMiddleware::new(self.config.clone()))
            .build();
        let call = async {
            let response = client
                .post(format!("http://{}/orders", self.addr))
                .url_template("/orders")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(order)?)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, Error>((status, body))
        };
        let (status, body) = match call.with_context(cx).await {
            Ok(answer) => answer,
            Err(e) => {
                root.end_error(&Failure::new("request", "the order could not be sent"));
                return Err(e);
            }
        };
        if !status.is_success() {
            root.end_error(&Failure::new(
                status.as_str().to_owned(),
                "the order was refused",
            ));
            return Err(format!(
                "the API answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        root.end_ok();
        let placed: Placed = serde_json::from_slice(&body)?;

        if self.worker.is_some() {
            loop {
                match tokio::time::timeout(CONFIRM_TIMEOUT, self.confirmed.recv()).await {
                    Ok(Some(id)) if id == placed.order_id => break,
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => {
                        return Err("the worker did not confirm the order in time".into());
                    }
                }
            }
            // Shutting the runner down waits for the settlement, which ends the CONSUMER span.
            if let Some(worker) = self.worker.take() {
                worker.shutdown().await;
            }
        }
        Ok(OrderReport {
            trace_id,
            http_status: status.as_u16(),
            order_id: placed.order_id,
            total_cents: placed.total_cents,
            status: self.shop.orders.status(placed.order_id).await?,
            orders_db: self.shop.orders.system(),
            queue: self.shop.events.as_ref().map(|e| e.queue().to_owned()),
        })
    }

    /// Stops the worker and the API and removes what the run created, through the bare clients.
    async fn stop(mut self, order_ids: &[i64], skus: &[String]) {
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await;
        }
        let _ = self.stop_api.send(());
        let _ = self.api.await;
        self.shop.close(order_ids, skus).await;
    }
}

impl Shop {
    /// Removes what the run created, through the bare clients (outside the trace).
    async fn close(&self, order_ids: &[i64], skus: &[String]) {
        close_all(
            self.events.as_ref(),
            self.cache.as_ref(),
            self.audit.as_ref(),
            Some(&self.orders),
            order_ids,
            skus,
        )
        .await;
    }
}

async fn close_all(
    events: Option<&Events>,
    cache: Option<&Cache>,
    audit: Option<&Audit>,
    orders: Option<&Orders>,
    order_ids: &[i64],
    skus: &[String],
) {
    if let Some(events) = events {
        events.close().await;
    }
    if let Some(cache) = cache {
        cache.close(order_ids, skus).await;
    }
    if let Some(audit) = audit {
        audit.close().await;
    }
    if let Some(orders) = orders {
        orders.close().await;
    }
}

/// Runs the order flow once against `env`, with the adapters configured by `config` (providers and
/// propagator), and cleans up after itself. Every span it records belongs to one trace, rooted at
/// the client's `checkout` span.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), tracewire_demo::Error> {
/// use tracewire_demo::{DemoTelemetry, Environment, Order, run_order_flow};
///
/// let telemetry = DemoTelemetry::new("tracewire-demo", None)?;
/// let env = Environment::detect(std::time::Duration::from_millis(300));
/// let report = run_order_flow(&env, &telemetry.config(), &Order::default()).await?;
/// println!("order {} is {}", report.order_id, report.status);
/// telemetry.shutdown().await?;
/// # Ok(()) }
/// ```
pub async fn run_order_flow(
    env: &Environment,
    config: &Config,
    order: &Order,
) -> Result<OrderReport, Error> {
    let mut running = Running::start(env, config).await?;
    let result = running.checkout(order).await;
    let ids: Vec<i64> = result
        .as_ref()
        .map(|r| vec![r.order_id])
        .unwrap_or_default();
    running.stop(&ids, std::slice::from_ref(&order.sku)).await;
    result
}
