//! Metrics and traces of the app.
//!
//! * **`/metrics`**: the process's metrics in the Prometheus text format, from
//!   `metrics-exporter-prometheus` installed as the global `metrics` recorder (no HTTP listener
//!   of its own: the route is on the app's server). It carries the SDK's metrics
//!   ([`inngest_sdk::telemetry`]): `inngest_calls_total{function,outcome}`,
//!   `inngest_errors_total{function,kind}`, and the histograms
//!   `inngest_step_duration_seconds{function,outcome}` and `inngest_call_state_bytes{function}`.
//! * **Traces over OTLP**, only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (off otherwise): the
//!   SDK's call and step spans (and the app's own `info` spans) are exported over OTLP
//!   http/protobuf to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`, with `service.name` from
//!   `OTEL_SERVICE_NAME` (default `otakumori`).

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The path of the Prometheus scrape endpoint on the app's server.
pub const METRICS_PATH: &str = "/metrics";
/// Histogram buckets of step durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
/// Histogram buckets of a call's memoized state, in bytes.
const STATE_BUCKETS: [f64; 8] = [
    0.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();
static TRACER_PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use. If another global
/// recorder was installed first, the handle renders only what this recorder sees (nothing).
pub fn metrics_handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(inngest_sdk::telemetry::STEP_DURATION_SECONDS.to_owned()),
                &DURATION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(inngest_sdk::telemetry::CALL_STATE_BYTES.to_owned()),
                    &STATE_BUCKETS,
                )
            });
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(e) => {
                tracing::warn!(error = %e, "metric buckets refused; using summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
        }
        inngest_sdk::telemetry::describe_metrics();
        handle
    })
}

/// `GET /metrics`: the Prometheus text exposition of the process's metrics.
pub fn metrics_router() -> Router {
    let handle = metrics_handle();
    Router::new().route(
        METRICS_PATH,
        get(move || async move {
            handle.run_upkeep();
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                handle.render(),
            )
        }),
    )
}

/// The OTLP trace layer when `OTEL_EXPORTER_OTLP_ENDPOINT` is set in `env` (a variable lookup,
/// e.g. [`Env::lookup`](crate::app::Env::lookup)); `None` otherwise, and when the exporter
/// cannot be built (the reason is printed). Spans at `info` and above are exported, whatever the
/// log filter. Needs a Tokio runtime (the exports go out on it).
pub fn otlp_layer<S>(env: impl Fn(&str) -> Option<String>) -> Option<impl Layer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpHttp {
            client: reqwest::Client::new(),
            runtime,
        })
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(10))
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {e}");
            return None;
        }
    };
    let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "otakumori".to_owned());
    let provider = SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("otakumori");
    let _ = TRACER_PROVIDER.set(provider);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO),
    )
}

/// Sends the spans not exported yet (OTLP on); a no-op when traces are off.
pub async fn flush_traces() {
    if let Some(provider) = TRACER_PROVIDER.get() {
        // The exporter's thread sends through the runtime: wait off the runtime's threads.
        let provider = provider.clone();
        let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

/// The OTLP exporter's HTTP client: the app's reqwest client, each export spawned on the app's
/// Tokio runtime (the batch exporter runs on a thread of its own).
#[derive(Debug)]
struct OtlpHttp {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttp {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let client = self.client.clone();
        let send = async move {
            let (parts, body) = request.into_parts();
            let res = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await?;
            let mut out = opentelemetry_http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, opentelemetry_http::HttpError>(out)
        };
        self.runtime.spawn(send).await?
    }
}
