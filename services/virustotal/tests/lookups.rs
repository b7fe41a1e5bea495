//! Every tool against the local v3 stub (`tests/stub`), in process with the
//! in-process quota and cache (one replica, no Redis): the reports read
//! from the documented objects, the human summaries, "not found" as an
//! answer, invalid indicators refused before any API call, cache hits that
//! cost no quota, and every error: a missing or wrong key, the quota spent
//! (ours and the API's 429), 5xx answers retried with a bounded back-off,
//! 4xx answers not retried, timeouts and refused connections.

mod stub;

use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use stub::{EICAR_MD5, EICAR_SHA1, EICAR_SHA256, MALWARE_TEST_URL, Scripted, Stub, fixture};
use virustotal::{
    Settings, VirusTotal,
    config::RateLimits,
    errors::META_KEY,
    tools::{lookup_result, structured},
};

const KEY: &str = "test-key-0123456789abcdef0123456789abcdef0123456789abcdef01234567";

/// Settings against `stub` with short back-offs, so retries stay quick, and
/// no rate limits (the tests of the quota set their own).
fn settings(stub: &Stub, key: Option<&str>) -> Settings {
    let mut settings = Settings::new(key, &stub.base_url()).expect("settings");
    settings.rate_limits = RateLimits {
        per_minute: None,
        per_day: None,
    };
    settings.retry.initial_backoff = Duration::from_millis(20);
    settings.retry.max_backoff = Duration::from_millis(100);
    settings.timeout = Duration::from_secs(5);
    settings
}

fn service(settings: Settings) -> VirusTotal {
    VirusTotal::new(settings, None).expect("service")
}

fn content(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content: {result:?}"))
}

fn texts(result: &CallToolResult) -> Vec<String> {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect()
}

fn assert_success(result: &CallToolResult) {
    assert_eq!(result.is_error, Some(false), "{:?}", texts(result));
    let texts = texts(result);
    assert_eq!(texts.len(), 2, "{texts:?}");
    // The second block is the structured content, serialized.
    let json: Value = serde_json::from_str(&texts[1]).expect("JSON text block");
    assert_eq!(&json, content(result));
}

/// The `_meta` error of a tool error: its code and wait.
fn error_of(result: &CallToolResult) -> (String, Option<u64>, String) {
    assert_eq!(result.is_error, Some(true), "{:?}", texts(result));
    assert!(result.structured_content.is_none());
    let meta = serde_json::to_value(&result.meta).expect("meta");
    let error = &meta[META_KEY];
    (
        error["code"].as_str().expect("a code").to_owned(),
        error["retry_after_seconds"].as_u64(),
        texts(result).join("\n"),
    )
}

/// Counts the categories of an object's `last_analysis_results` (or an
/// analysis' `results`) as the API reports them: independent of the
/// service's reading.
fn count_categories(results: &Value) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for result in results.as_object().expect("results").values() {
        *counts
            .entry(result["category"].as_str().unwrap().replace('-', "_"))
            .or_insert(0) += 1;
    }
    counts
}

fn assert_stats(analysis: &Value, results: &Value) {
    let counts = count_categories(results);
    for (category, count) in &counts {
        assert_eq!(
            analysis["stats"][category], *count,
            "{category}: {analysis}"
        );
    }
    let flagged: Vec<&Value> = results
        .as_object()
        .unwrap()
        .values()
        .filter(|result| result["category"] == "malicious" || result["category"] == "suspicious")
        .collect();
    assert_eq!(
        analysis["flagged_by"].as_array().unwrap().len(),
        flagged.len()
    );
    for engine in analysis["flagged_by"].as_array().unwrap() {
        let source = &results[engine["engine"].as_str().unwrap()];
        assert_eq!(engine["category"], source["category"]);
        assert_eq!(engine["result"], source["result"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_reports_by_any_of_the_three_hashes() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    let source = fixture("file_eicar.json");
    let attributes = &source["data"]["attributes"];

    let result = lookup_result(vt.file_report(&EICAR_SHA256.to_uppercase()).await);
    assert_success(&result);
    let answer = content(&result);
    assert_eq!(answer["kind"], "file");
    assert_eq!(answer["id"], EICAR_SHA256);
    assert_eq!(answer["found"], true);
    assert_eq!(answer["cached"], false);
    assert_eq!(answer["age_seconds"], 0);
    let report = &answer["report"];
    for field in [
        "sha256",
        "sha1",
        "md5",
        "size",
        "type_description",
        "meaningful_name",
        "reputation",
        "times_submitted",
    ] {
        assert_eq!(report[field], attributes[field], "{field}");
    }
    assert_eq!(report["total_votes"], attributes["total_votes"]);
    assert_eq!(
        report["threat_label"],
        attributes["popular_threat_classification"]["suggested_threat_label"]
    );
    assert_eq!(
        report["names"].as_array().unwrap().len(),
        10,
        "names are capped at 10"
    );
    assert_eq!(report["first_submission_date"], "2006-05-22T12:42:02Z");
    assert_eq!(report["analysis"]["verdict"], "malicious");
    assert_stats(&report["analysis"], &attributes["last_analysis_results"]);
    assert_eq!(
        report["link"],
        format!("https://www.virustotal.com/gui/file/{EICAR_SHA256}")
    );

    // The summary: verdict counts, reputation, notable engines, first/last seen.
    let summary = &texts(&result)[0];
    for expected in [
        EICAR_SHA256,
        "malicious: flagged by 10 of 13 engines (malicious 9, suspicious 1, undetected 3, harmless 0)",
        "notable: Avast (EICAR Test-NOT virus!!!), BitDefender (EICAR-Test-File (not a virus))",
        "and 5 more",
        "Reputation 3411",
        "First seen 2006-05-22",
        "last analysed 2024-05-18",
        "Fresh from VirusTotal",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in {summary}");
    }

    // The MD5 and SHA-1 name the same file: served from the cache, which the
    // first answer filled under all three hashes.
    for hash in [EICAR_MD5, EICAR_SHA1] {
        let answer = vt.file_report(hash).await.expect("a report");
        assert!(answer.cached, "{hash}");
        assert_eq!(answer.report.unwrap().sha256, EICAR_SHA256);
    }
    let calls = stub.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, format!("/api/v3/files/{EICAR_SHA256}"));
    assert_eq!(calls[0].api_key.as_deref(), Some(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_reports_use_the_unpadded_base64url_identifier() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    let source = fixture("url_malware_test.json");
    let result = lookup_result(vt.url_report(MALWARE_TEST_URL).await);
    assert_success(&result);
    let answer = content(&result);
    let expected_id = base64_url(MALWARE_TEST_URL);
    assert_eq!(answer["id"], expected_id);
    assert!(!expected_id.contains('='));
    let report = &answer["report"];
    assert_eq!(report["url"], MALWARE_TEST_URL);
    assert_eq!(report["id"], source["data"]["id"]);
    assert_eq!(report["title"], "Malware test page");
    assert_eq!(report["final_url"], Value::Null, "same as the URL");
    assert_eq!(
        report["categories"],
        source["data"]["attributes"]["categories"]
    );
    assert_eq!(report["reputation"], -87);
    assert_eq!(report["last_http_response_code"], 200);
    assert_eq!(report["analysis"]["verdict"], "malicious");
    assert_stats(
        &report["analysis"],
        &source["data"]["attributes"]["last_analysis_results"],
    );
    let summary = &texts(&result)[0];
    for expected in [
        "malicious: flagged by 6 of 12 engines",
        "Google Safebrowsing (malware)",
        "Categories: Malicious (alphaMountain.ai), malicious web sites, malware,",
        "Reputation -87",
        "First seen 2012-06-11",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in {summary}");
    }
    assert_eq!(stub.calls()[0].path, format!("/api/v3/urls/{expected_id}"));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_url_then_poll_the_analysis_until_completed() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    let url = "https://new-site.example.com/login?next=/account";
    // Unknown at first: an answer, cached briefly.
    let unknown = vt.url_report(url).await.expect("an answer");
    assert!(!unknown.found);

    let submitted = vt.scan_url(url).await.expect("submitted");
    let result = structured(&submitted, virustotal::report::Summary::summary(&submitted));
    assert_success(&result);
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(url.as_bytes()));
    assert!(
        submitted.analysis_id.starts_with(&format!("u-{sha256}-")),
        "{}",
        submitted.analysis_id
    );
    assert_eq!(submitted.url_id, base64_url(url));
    let post = stub.calls().pop().unwrap();
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/api/v3/urls")
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(post.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form, [("url".to_owned(), url.to_owned())]);

    let queued = lookup_result(vt.analysis(&submitted.analysis_id).await);
    assert_success(&queued);
    assert_eq!(content(&queued)["report"]["status"], "queued");
    assert_eq!(content(&queued)["report"]["url"], url);
    assert!(
        texts(&queued)[0].contains("poll again"),
        "{:?}",
        texts(&queued)
    );

    // A queued analysis is not cached: the next poll asks again.
    let completed = lookup_result(vt.analysis(&submitted.analysis_id).await);
    assert_success(&completed);
    let report = &content(&completed)["report"];
    assert_eq!(report["status"], "completed");
    assert_eq!(content(&completed)["cached"], false);
    assert_stats(
        &report["analysis"],
        &fixture("analysis_url_completed.json")["data"]["attributes"]["results"],
    );
    // A completed one is final: cached.
    let again = vt.analysis(&submitted.analysis_id).await.unwrap();
    assert!(again.cached);

    // scan_url dropped the cached "not found": the URL report is there now.
    let report = vt.url_report(url).await.expect("a report");
    assert!(report.found && !report.cached);
    assert_eq!(report.report.unwrap().url, url);
    // url_report, scan, 2 polls, url_report.
    assert_eq!(stub.call_count(), 5);

    let unknown = lookup_result(vt.analysis("u-0000-1").await);
    assert_success(&unknown);
    assert_eq!(content(&unknown)["found"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_and_ip_reports() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));

    let result = lookup_result(vt.domain_report("Google.COM.").await);
    assert_success(&result);
    let source = fixture("domain_google.com.json");
    let report = &content(&result)["report"];
    assert_eq!(content(&result)["id"], "google.com");
    assert_eq!(report["registrar"], "MarkMonitor Inc.");
    assert_eq!(report["creation_date"], "1997-09-15T04:00:00Z");
    assert_eq!(report["popularity_ranks"]["Majestic"], 1);
    assert_eq!(
        report["last_dns_records"].as_array().unwrap().len(),
        source["data"]["attributes"]["last_dns_records"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        report["last_dns_records"][0],
        json!({"type": "A", "value": "142.250.180.14", "ttl": 300})
    );
    assert_eq!(report["analysis"]["verdict"], "harmless");
    assert_stats(
        &report["analysis"],
        &source["data"]["attributes"]["last_analysis_results"],
    );
    let summary = &texts(&result)[0];
    for expected in [
        "Domain google.com (registrar MarkMonitor Inc.)",
        "harmless: flagged by none of 15 engines (harmless 12, undetected 3)",
        "Reputation 545",
        "Registered 1997-09-15",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in {summary}");
    }

    for (input, id, fixture_name, network) in [
        ("8.8.8.8", "8.8.8.8", "ip_8.8.8.8.json", "8.8.8.0/24"),
        (
            "2001:4860:4860:0:0:0:0:8888",
            "2001:4860:4860::8888",
            "ip_2001-4860-4860--8888.json",
            "2001:4860::/32",
        ),
    ] {
        let result = lookup_result(vt.ip_report(input).await);
        assert_success(&result);
        let report = &content(&result)["report"];
        assert_eq!(content(&result)["id"], id);
        assert_eq!(report["ip"], id);
        assert_eq!(report["asn"], 15169);
        assert_eq!(report["as_owner"], "GOOGLE");
        assert_eq!(report["network"], network);
        assert_eq!(report["country"], "US");
        assert_eq!(report["analysis"]["verdict"], "suspicious");
        assert_stats(
            &report["analysis"],
            &fixture(fixture_name)["data"]["attributes"]["last_analysis_results"],
        );
        let summary = &texts(&result)[0];
        assert!(
            summary.contains(&format!("IP address {id} (AS15169 GOOGLE, {network}, US)")),
            "{summary}"
        );
        assert!(summary.contains("Criminal IP (suspicious)"), "{summary}");
    }
    let paths: Vec<String> = stub.calls().into_iter().map(|call| call.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v3/domains/google.com",
            "/api/v3/ip_addresses/8.8.8.8",
            "/api/v3/ip_addresses/2001:4860:4860::8888"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_an_answer_and_is_cached_briefly() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    let unknown = "0".repeat(64);
    let result = lookup_result(vt.file_report(&unknown).await);
    assert_success(&result);
    assert_eq!(content(&result)["found"], false);
    assert_eq!(content(&result)["report"], Value::Null);
    assert!(
        texts(&result)[0].contains("no record of this file"),
        "{:?}",
        texts(&result)
    );
    for lookup in [
        lookup_result(vt.domain_report("never-seen.example").await),
        lookup_result(vt.ip_report("192.0.2.1").await),
    ] {
        assert_success(&lookup);
        assert_eq!(content(&lookup)["found"], false);
    }
    assert_eq!(stub.call_count(), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = vt.file_report(&unknown).await.unwrap();
    assert!(!again.found && again.cached);
    assert!(again.age_seconds >= 1, "{again:?}");
    assert_eq!(stub.call_count(), 3, "the cached not-found cost no request");

    // With the not-found TTL at 0, not-found answers are not cached.
    let mut uncached = settings(&stub, Some(KEY));
    uncached.cache_ttl.not_found = None;
    let vt = service(uncached);
    vt.file_report(&unknown).await.unwrap();
    vt.file_report(&unknown).await.unwrap();
    assert_eq!(stub.call_count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_indicators_are_refused_before_any_api_call() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    let long = "a".repeat(9000);
    for hash in [
        "",
        "xyz",
        "44d88612fea8a8f36de82e1278abb02",
        &"g".repeat(64),
        "../../etc/passwd",
        &long,
    ] {
        let (code, wait, message) = error_of(&lookup_result(vt.file_report(hash).await));
        assert_eq!(code, "InvalidIndicator", "{hash}");
        assert_eq!(wait, None);
        assert!(message.contains("MD5"), "{message}");
        assert!(message.len() < 500, "long input is not echoed whole");
    }
    for url in [
        "",
        "example.com",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://a b/",
        &format!("http://x.com/{long}"),
    ] {
        let (code, ..) = error_of(&lookup_result(vt.url_report(url).await));
        assert_eq!(code, "InvalidIndicator", "{url}");
        let (code, ..) = error_of(
            &vt.scan_url(url)
                .await
                .map(|_| ())
                .map_or_else(|error| error.into_result(), |()| panic!("{url} scanned")),
        );
        assert_eq!(code, "InvalidIndicator", "{url}");
    }
    for domain in [
        "",
        "https://example.com/",
        "8.8.8.8",
        "localhost",
        "a..b",
        "exa mple.com",
    ] {
        let (code, ..) = error_of(&lookup_result(vt.domain_report(domain).await));
        assert_eq!(code, "InvalidIndicator", "{domain}");
    }
    for ip in [
        "",
        "256.0.0.1",
        "8.8.8.8/32",
        "8.8.8.8:53",
        "fe80::1%eth0",
        "google.com",
        "1.2.3",
    ] {
        let (code, ..) = error_of(&lookup_result(vt.ip_report(ip).await));
        assert_eq!(code, "InvalidIndicator", "{ip}");
    }
    for id in ["", "a b", "../x?y=1", &long] {
        let (code, ..) = error_of(&lookup_result(vt.analysis(id).await));
        assert_eq!(code, "InvalidIndicator", "{id}");
    }
    assert_eq!(stub.call_count(), 0, "{:?}", stub.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_cost_no_quota() {
    let stub = Stub::start(&[KEY]).await;
    let mut one_a_minute = settings(&stub, Some(KEY));
    one_a_minute.rate_limits.per_minute = Some(1);
    let vt = service(one_a_minute);
    let first = vt.domain_report("google.com").await.unwrap();
    assert!(first.found && !first.cached);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..20 {
        let hit = lookup_result(vt.domain_report("google.com").await);
        assert_success(&hit);
        assert_eq!(content(&hit)["cached"], true);
        assert!(content(&hit)["age_seconds"].as_u64().unwrap() >= 1);
        assert_eq!(
            content(&hit)["report"],
            serde_json::to_value(&first.report).unwrap()
        );
        assert!(
            texts(&hit)[0].contains("From the cache"),
            "{:?}",
            texts(&hit)
        );
    }
    assert_eq!(stub.call_count(), 1);
    // The budget is still spent for anything not cached.
    let (code, wait, _) = error_of(&lookup_result(vt.ip_report("8.8.8.8").await));
    assert_eq!(code, "RateLimited");
    assert!(wait.is_some_and(|wait| wait > 0 && wait <= 60), "{wait:?}");

    // With VIRUSTOTAL_CACHE_TTL_SECONDS=0 nothing is cached.
    let mut no_cache = settings(&stub, Some(KEY));
    no_cache.cache_ttl.found = None;
    let vt = service(no_cache);
    vt.domain_report("google.com").await.unwrap();
    let second = vt.domain_report("google.com").await.unwrap();
    assert!(!second.cached);
    assert_eq!(stub.call_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minute_budget_says_exactly_when_to_retry() {
    let stub = Stub::start(&[KEY]).await;
    let mut public = settings(&stub, Some(KEY));
    public.rate_limits = RateLimits::default();
    assert_eq!(public.rate_limits.per_minute, Some(4));
    let vt = service(public);
    let started = Instant::now();
    for index in 0..4 {
        let hash = format!("{index:064x}");
        assert!(vt.file_report(&hash).await.is_ok());
    }
    for index in 4..8 {
        let (code, wait, message) = error_of(&lookup_result(
            vt.file_report(&format!("{index:064x}")).await,
        ));
        assert_eq!(code, "RateLimited");
        let wait = wait.unwrap();
        // The first request frees its slot 60 s after it was granted.
        let expected = 60 - started.elapsed().as_secs();
        assert!(wait <= 60 && wait + 1 >= expected, "{wait} vs {expected}");
        assert!(
            message.contains(&format!("Retry after {wait} seconds")),
            "{message}"
        );
        assert!(
            message.contains("VIRUSTOTAL_RATE_LIMIT_PER_MINUTE"),
            "{message}"
        );
    }
    assert_eq!(stub.call_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_reported_by_every_tool() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, None));
    let results = [
        lookup_result(vt.file_report(EICAR_SHA256).await),
        lookup_result(vt.url_report(MALWARE_TEST_URL).await),
        vt.scan_url(MALWARE_TEST_URL)
            .await
            .map_or_else(|error| error.into_result(), |_| panic!("scanned")),
        lookup_result(vt.analysis("u-abc-1").await),
        lookup_result(vt.domain_report("google.com").await),
        lookup_result(vt.ip_report("8.8.8.8").await),
    ];
    for result in &results {
        let (code, _, message) = error_of(result);
        assert_eq!(code, "ApiKeyNotConfigured");
        assert!(message.contains("VIRUSTOTAL_API_KEY"), "{message}");
    }
    assert_eq!(stub.call_count(), 0);
    assert!(
        vt.readiness().is_ok(),
        "a missing key does not fail readiness"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_configuration_error_on_readiness_too() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some("not-the-key")));
    assert!(vt.readiness().is_ok());
    let (code, wait, message) = error_of(&lookup_result(vt.file_report(EICAR_SHA256).await));
    assert_eq!(code, "WrongCredentialsError");
    assert_eq!(wait, None);
    assert!(
        message.contains("VIRUSTOTAL_API_KEY") && message.contains("Wrong API key"),
        "{message}"
    );
    assert!(!message.contains("not-the-key"));
    assert_eq!(stub.call_count(), 1, "401 is not retried");
    let readiness = vt.readiness().unwrap_err();
    assert!(readiness.contains("WrongCredentialsError"), "{readiness}");
    assert!(!readiness.contains("not-the-key"), "{readiness}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_from_the_api_pauses_requests_for_the_wait_it_names() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    stub.script(Scripted::Error {
        code: "QuotaExceededError",
        retry_after: Some(17),
    });
    let (code, wait, message) = error_of(&lookup_result(vt.file_report(EICAR_SHA256).await));
    assert_eq!(code, "QuotaExceededError");
    assert_eq!(wait, Some(17));
    assert!(
        message.contains("Quota exceeded") && message.contains("retry after 17 seconds"),
        "{message}"
    );
    // Every next request waits for the back-off, without calling the API.
    let (code, wait, message) = error_of(&lookup_result(vt.domain_report("google.com").await));
    assert_eq!(code, "RateLimited");
    assert!(
        wait.is_some_and(|wait| (16..=17).contains(&wait)),
        "{wait:?}"
    );
    assert!(message.contains("429"), "{message}");
    assert_eq!(stub.call_count(), 1);
    assert!(
        vt.readiness().is_ok(),
        "a spent quota is not a configuration problem"
    );

    // Without Retry-After the pause is VIRUSTOTAL_QUOTA_BACKOFF_SECONDS.
    let mut configured = settings(&stub, Some(KEY));
    configured.quota_backoff = Duration::from_secs(42);
    let vt = service(configured);
    stub.script(Scripted::Error {
        code: "TooManyRequestsError",
        retry_after: None,
    });
    let (code, wait, _) = error_of(&lookup_result(vt.ip_report("8.8.8.8").await));
    assert_eq!((code.as_str(), wait), ("TooManyRequestsError", Some(42)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_a_bounded_back_off() {
    let stub = Stub::start(&[KEY]).await;
    let vt = service(settings(&stub, Some(KEY)));
    // Two failures, then the answer: three requests, one success.
    stub.script(Scripted::Error {
        code: "TransientError",
        retry_after: None,
    });
    stub.script(Scripted::Html(502));
    let answer = vt
        .file_report(EICAR_SHA256)
        .await
        .expect("retried to success");
    assert!(answer.found);
    assert_eq!(stub.call_count(), 3);

    // Always failing: 1 + VIRUSTOTAL_MAX_RETRIES (2) requests, then the error.
    for code in ["TransientError", "DeadlineExceededError", "TransientError"] {
        stub.script(Scripted::Error {
            code,
            retry_after: None,
        });
    }
    let (found, _, message) = error_of(&lookup_result(vt.domain_report("google.com").await));
    assert_eq!(found, "TransientError");
    assert!(
        message.contains("after 3 attempts") && message.contains("HTTP 503"),
        "{message}"
    );
    assert_eq!(stub.call_count(), 6);

    // A 502 page from a proxy keeps its status in the message.
    for _ in 0..3 {
        stub.script(Scripted::Html(502));
    }
    let (code, _, message) = error_of(&lookup_result(vt.ip_report("8.8.8.8").await));
    assert_eq!(code, "HTTP 502");
    assert!(message.contains("Bad Gateway"), "{message}");
    assert_eq!(stub.call_count(), 9);

    // 4xx answers are final: one request each.
    for (code, status) in [
        ("ForbiddenError", 403),
        ("InvalidArgumentError", 400),
        ("NotAvailableYet", 400),
        ("FailedDependencyError", 424),
    ] {
        stub.script(Scripted::Error {
            code,
            retry_after: None,
        });
        let before = stub.call_count();
        let (found, wait, message) =
            error_of(&lookup_result(vt.ip_report("2001:4860:4860::8888").await));
        assert_eq!(found, code);
        assert_eq!(wait, None);
        assert_eq!(stub.call_count(), before + 1, "{code} must not be retried");
        if status == 403 {
            assert!(message.contains("privilege"), "{message}");
        }
    }

    // Retries take quota slots: with 2 a minute, the third attempt is refused.
    let mut tight = settings(&stub, Some(KEY));
    tight.rate_limits.per_minute = Some(2);
    let vt = service(tight);
    for _ in 0..3 {
        stub.script(Scripted::Error {
            code: "TransientError",
            retry_after: None,
        });
    }
    let before = stub.call_count();
    let (code, wait, _) = error_of(&lookup_result(vt.domain_report("google.com").await));
    assert_eq!(code, "RateLimited");
    assert!(wait.is_some_and(|wait| wait > 0 && wait <= 60));
    assert_eq!(stub.call_count(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_refused_connections_are_retried_then_reported() {
    let stub = Stub::start(&[KEY]).await;
    let mut quick = settings(&stub, Some(KEY));
    quick.timeout = Duration::from_millis(300);
    quick.retry.max_retries = 1;
    let vt = service(quick);
    stub.script(Scripted::Delay(Duration::from_secs(3)));
    stub.script(Scripted::Delay(Duration::from_secs(3)));
    let started = Instant::now();
    let (code, _, message) = error_of(&lookup_result(vt.file_report(EICAR_SHA256).await));
    assert_eq!(code, "Timeout");
    assert!(
        message.contains("300 ms") && message.contains("after 2 attempts"),
        "{message}"
    );
    assert_eq!(stub.call_count(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // One slow answer, then a quick one: the retry succeeds.
    stub.script(Scripted::Delay(Duration::from_secs(3)));
    assert!(vt.file_report(EICAR_SHA256).await.unwrap().found);

    // Nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut unreachable =
        Settings::new(Some(KEY), &format!("http://127.0.0.1:{closed}/api/v3")).unwrap();
    unreachable.retry.initial_backoff = Duration::from_millis(10);
    let vt = service(unreachable);
    let (code, _, message) = error_of(&lookup_result(vt.ip_report("8.8.8.8").await));
    assert_eq!(code, "ConnectionFailed");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert!(!message.contains(KEY));
}
