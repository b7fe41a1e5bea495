//! [`VirusTotal`]: every lookup's path, the same for all tools.
//!
//! ```text
//! input ─▶ indicator (validate; bad input: InvalidIndicator, no API call)
//!       ─▶ key configured? (else ApiKeyNotConfigured)
//!       ─▶ cache (hit: answered with cached: true, age_seconds; no quota spent)
//!       ─▶ quota: one slot per request (spent: RateLimited with the wait; Redis away: QuotaStoreUnavailable)
//!       ─▶ API request (5xx, timeout, connection failure: retried with exponential back-off,
//!          each retry taking its own slot; 4xx: final; 429: the fleet backs off; 401: /readyz fails)
//!       ─▶ report (found) or not found (NotFoundError: a normal answer, cached shorter)
//!       ─▶ cache
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use backon::{ExponentialBuilder, Retryable};
use fred::clients::Pool;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    api::{ApiClient, ApiError, ApiRequest},
    cache::{self, Cache, CacheEntry, MemoryCache, RedisCache},
    config::Settings,
    credentials::Credentials,
    errors::ToolError,
    indicator::{self, Indicator, Kind},
    quota::{LocalQuota, Quota, QuotaError, RedisQuota},
    report::{
        AnalysisReport, DomainReport, FileReport, IpReport, ScanSubmission, Summary, UrlReport,
    },
};

/// The answer of a report lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lookup<R> {
    /// What was looked up: `file`, `url`, `domain`, `ip_address` or `analysis`.
    pub kind: Kind,
    /// Its normalised API identifier (a URL's is the unpadded base64url of
    /// the URL).
    pub id: String,
    /// Whether VirusTotal knows it. `false` is the API's `NotFoundError`:
    /// nothing is known about this indicator (a normal answer, not a
    /// failure), and `report` is `null`.
    pub found: bool,
    /// Whether this answer came from the cache (no API request, no quota spent).
    pub cached: bool,
    /// How old the answer is, in seconds (0 when fresh from the API).
    pub age_seconds: u64,
    /// The report, when found.
    pub report: Option<R>,
}

impl<R: Summary> Lookup<R> {
    /// The human summary: the report's, or what not found means, and where
    /// the answer came from.
    pub fn summary(&self) -> String {
        let mut text = match &self.report {
            Some(report) => report.summary(),
            None => format!(
                "VirusTotal has no record of this {} ({}): nothing is known about it. That is \
                 an answer, not an error: it has never been submitted or seen. For a URL, \
                 scan_url submits it.",
                self.kind.as_str().replace('_', " "),
                self.id
            ),
        };
        if self.cached {
            text.push_str(&format!(
                " (From the cache, {} s old; no API quota spent.)",
                self.age_seconds
            ));
        } else {
            text.push_str(" (Fresh from VirusTotal.)");
        }
        text
    }
}

/// How a failed request ended, before it becomes a [`ToolError`].
#[derive(Debug)]
enum Failure {
    Quota(QuotaError),
    Api(ApiError),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Api(error) if error.is_retryable())
    }
}

/// The service's state: the API client, the quota, the cache and the key's
/// standing. One per process, shared by every session.
pub struct VirusTotal {
    settings: Settings,
    client: Option<ApiClient>,
    quota: Quota,
    cache: Cache,
    credentials: Credentials,
}

impl std::fmt::Debug for VirusTotal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirusTotal")
            .field("settings", &self.settings)
            .field("quota", &self.quota.backend())
            .field("cache", &self.cache.backend())
            .finish_non_exhaustive()
    }
}

impl VirusTotal {
    /// The service over `settings`; with `redis` (a pool on `REDIS_URL`) the
    /// quota and the cache are shared by the fleet, else kept in process.
    ///
    /// # Errors
    /// A message when the HTTP client cannot be built.
    pub fn new(settings: Settings, redis: Option<Pool>) -> Result<Self, String> {
        let client = match &settings.api_key {
            Some(key) => Some(ApiClient::new(&settings, key)?),
            None => None,
        };
        let key_id = settings.key_id().unwrap_or_else(|| "unset".to_owned());
        let limits = settings.rate_limits;
        let quota = match &redis {
            Some(pool) => Quota::Redis(RedisQuota::new(pool.clone(), &key_id, limits)),
            None => Quota::Local(LocalQuota::new(limits)),
        };
        let ttl = settings.cache_ttl;
        let cache = match (ttl.found, redis) {
            (None, _) => Cache::Off,
            (Some(_), Some(pool)) => Cache::Redis(RedisCache::new(pool)),
            (Some(found), None) => Cache::Memory(MemoryCache::new(
                found.max(ttl.not_found.unwrap_or_default()),
            )),
        };
        Ok(Self {
            settings,
            client,
            quota,
            cache,
            credentials: Credentials::default(),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The quota (for logs and tests).
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The cache (for logs and tests).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The `/readyz` check `virustotal_api_key`: fails while the API refuses
    /// the key (see [`crate::credentials`]).
    ///
    /// # Errors
    /// The operator's message.
    pub fn readiness(&self) -> Result<(), String> {
        self.credentials.check()
    }

    /// `get_file_report`: the file with this MD5, SHA-1 or SHA-256.
    ///
    /// # Errors
    /// [`ToolError`]; an input that is not such a hash is refused before
    /// any API call.
    pub async fn file_report(&self, hash: &str) -> Result<Lookup<FileReport>, ToolError> {
        let (indicator, _) = indicator::file_hash(hash)?;
        self.lookup(indicator, FileReport::from_api, FileReport::hashes, |_| {
            true
        })
        .await
    }

    /// `get_url_report`: the URL's report, by its unpadded base64url id.
    ///
    /// # Errors
    /// [`ToolError`].
    pub async fn url_report(&self, url: &str) -> Result<Lookup<UrlReport>, ToolError> {
        let (indicator, url) = indicator::url(url)?;
        self.lookup(
            indicator,
            |document, _| UrlReport::from_api(document, &url),
            |_| Vec::new(),
            |_| true,
        )
        .await
    }

    /// `get_domain_report`.
    ///
    /// # Errors
    /// [`ToolError`].
    pub async fn domain_report(&self, domain: &str) -> Result<Lookup<DomainReport>, ToolError> {
        let indicator = indicator::domain(domain)?;
        self.lookup(indicator, DomainReport::from_api, |_| Vec::new(), |_| true)
            .await
    }

    /// `get_ip_report`, IPv4 or IPv6.
    ///
    /// # Errors
    /// [`ToolError`].
    pub async fn ip_report(&self, ip: &str) -> Result<Lookup<IpReport>, ToolError> {
        let indicator = indicator::ip_address(ip)?;
        self.lookup(indicator, IpReport::from_api, |_| Vec::new(), |_| true)
            .await
    }

    /// `get_analysis`: an analysis' state; only completed analyses are
    /// cached (a queued one changes).
    ///
    /// # Errors
    /// [`ToolError`].
    pub async fn analysis(&self, id: &str) -> Result<Lookup<AnalysisReport>, ToolError> {
        let indicator = indicator::analysis_id(id)?;
        self.lookup(
            indicator,
            AnalysisReport::from_api,
            |_| Vec::new(),
            AnalysisReport::is_final,
        )
        .await
    }

    /// `scan_url`: submits the URL (`POST /urls`); never cached, and the
    /// URL's cached report is dropped, since a new analysis supersedes it.
    ///
    /// # Errors
    /// [`ToolError`].
    pub async fn scan_url(&self, url: &str) -> Result<ScanSubmission, ToolError> {
        let (indicator, url) = indicator::url(url)?;
        let client = self.client()?;
        let document = self
            .send(client, &ApiRequest::ScanUrl { url: url.clone() })
            .await?;
        self.cache
            .remove(&cache::key(Kind::Url, &indicator.id))
            .await;
        ScanSubmission::from_api(&document, &url, &indicator.id)
            .map_err(ToolError::UnexpectedResponse)
    }

    fn client(&self) -> Result<&ApiClient, ToolError> {
        self.client.as_ref().ok_or(ToolError::NotConfigured)
    }

    /// Cache, then quota and API, then cache again.
    async fn lookup<R, P, A, C>(
        &self,
        indicator: Indicator,
        parse: P,
        aliases: A,
        cacheable: C,
    ) -> Result<Lookup<R>, ToolError>
    where
        R: Serialize + DeserializeOwned,
        P: Fn(&Value, &str) -> R,
        A: Fn(&R) -> Vec<String>,
        C: Fn(&R) -> bool,
    {
        let client = self.client()?;
        let Indicator { kind, id } = indicator;
        let key = cache::key(kind, &id);
        let answer = |found: bool, cached: bool, age_seconds: u64, report: Option<R>| Lookup {
            kind,
            id: id.clone(),
            found,
            cached,
            age_seconds,
            report,
        };
        if let Some(entry) = self.cache.get(&key).await {
            let age = entry.age_seconds();
            match entry.report {
                None => return Ok(answer(false, true, age, None)),
                Some(report) => {
                    if let Ok(report) = serde_json::from_value::<R>(report) {
                        tracing::debug!(kind = kind.as_str(), "report cache hit");
                        return Ok(answer(true, true, age, Some(report)));
                    }
                }
            }
        }
        let request = ApiRequest::Get {
            kind,
            id: id.clone(),
        };
        match self.send(client, &request).await {
            Ok(document) => {
                let report = parse(&document, &id);
                if let Some(ttl) = self.settings.cache_ttl.found
                    && cacheable(&report)
                {
                    let value = serde_json::to_value(&report)
                        .map_err(|error| ToolError::UnexpectedResponse(error.to_string()))?;
                    let mut keys = vec![key];
                    for alias in aliases(&report) {
                        let alias = cache::key(kind, &alias);
                        if !keys.contains(&alias) {
                            keys.push(alias);
                        }
                    }
                    self.cache
                        .put(&keys, &CacheEntry::now(Some(value)), ttl)
                        .await;
                }
                Ok(answer(true, false, 0, Some(report)))
            }
            Err(ToolError::Api { error, .. }) if error.is_not_found() => {
                if let Some(ttl) = self.settings.cache_ttl.not_found {
                    self.cache.put(&[key], &CacheEntry::now(None), ttl).await;
                }
                Ok(answer(false, false, 0, None))
            }
            Err(error) => Err(error),
        }
    }

    /// One API request through the quota, retried with exponential back-off
    /// while it fails in a way that may pass (each attempt takes a slot).
    async fn send(&self, client: &ApiClient, request: &ApiRequest) -> Result<Value, ToolError> {
        let retry = self.settings.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(retry.initial_backoff)
            .with_max_delay(retry.max_backoff)
            .with_max_times(retry.max_retries as usize)
            .with_jitter();
        let attempts = Arc::new(AtomicU32::new(0));
        let started = Instant::now();
        let attempt = || {
            let attempts = attempts.clone();
            async move {
                attempts.fetch_add(1, Ordering::Relaxed);
                self.quota.acquire().await.map_err(Failure::Quota)?;
                client.send(request).await.map_err(Failure::Api)
            }
        };
        let result = attempt
            .retry(backoff)
            .when(Failure::is_retryable)
            .notify(|failure, delay: Duration| {
                if let Failure::Api(error) = failure {
                    tracing::warn!(
                        request = request.kind_name(),
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "VirusTotal request failed; retrying"
                    );
                }
            })
            .await;
        let attempts = attempts.load(Ordering::Relaxed);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(document) => {
                self.credentials.accepted();
                tracing::info!(
                    request = request.kind_name(),
                    attempts,
                    elapsed_ms,
                    "VirusTotal answered"
                );
                Ok(document)
            }
            Err(Failure::Quota(QuotaError::Exhausted(denial))) => {
                tracing::info!(
                    request = request.kind_name(),
                    window = denial.window.as_str(),
                    retry_after_ms = denial.retry_after.as_millis() as u64,
                    "VirusTotal quota spent; request not sent"
                );
                Err(ToolError::RateLimited(denial))
            }
            Err(Failure::Quota(QuotaError::Unavailable(cause))) => {
                tracing::warn!(request = request.kind_name(), %cause, "quota store unavailable; request not sent");
                Err(ToolError::QuotaStore(cause))
            }
            Err(Failure::Api(error)) => {
                Err(self.api_failure(request, error, attempts, elapsed_ms).await)
            }
        }
    }

    /// Notes what a final API error means for the fleet (a `401` fails
    /// readiness, a `429` pauses every replica) and turns it into a tool
    /// error.
    async fn api_failure(
        &self,
        request: &ApiRequest,
        error: ApiError,
        attempts: u32,
        elapsed_ms: u64,
    ) -> ToolError {
        let mut retry_after = None;
        match &error {
            ApiError::Status { code, message, .. } if error.is_credentials() => {
                tracing::error!(
                    request = request.kind_name(),
                    %code,
                    "VirusTotal rejected the API key (401): check VIRUSTOTAL_API_KEY"
                );
                self.credentials.rejected(code, message);
            }
            ApiError::Status {
                retry_after: header,
                ..
            } if error.is_quota() => {
                let wait = header.unwrap_or(self.settings.quota_backoff);
                retry_after = Some(wait);
                tracing::warn!(
                    request = request.kind_name(),
                    back_off_seconds = wait.as_secs(),
                    "VirusTotal answered 429: every replica pauses"
                );
                if let Err(cause) = self.quota.back_off(wait).await {
                    tracing::warn!(%cause, "cannot record the fleet-wide back-off");
                }
                self.credentials.accepted();
            }
            ApiError::Status { .. } => {
                if !error.is_not_found() {
                    tracing::info!(request = request.kind_name(), %error, attempts, elapsed_ms, "VirusTotal refused the request");
                } else {
                    tracing::info!(
                        request = request.kind_name(),
                        attempts,
                        elapsed_ms,
                        "VirusTotal answered: not found"
                    );
                }
                self.credentials.accepted();
            }
            ApiError::Timeout(_) | ApiError::Connection(_) | ApiError::Body(_) => {
                tracing::warn!(request = request.kind_name(), %error, attempts, elapsed_ms, "VirusTotal request failed");
            }
        }
        ToolError::Api {
            error,
            attempts,
            retry_after,
        }
    }
}
