//! Per-event cost of each enrichment step.
//! Run: `tests/fixtures/fetch-geo.sh && cargo bench --bench enrich`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use tally::enrich::{
    ClientHints, DeviceDetector, GeoDb, ReferrerClassifier, SpamList, clean_url, mask_emails,
};
use tally::privacy::FullIp;
use url::Url;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const UA_MOBILE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const HINTS: ClientHints<'static> = ClientHints {
    ua: Some(r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
    platform: Some(r#""Windows""#),
    platform_version: Some(r#""15.0.0""#),
    mobile: Some("?0"),
    full_version_list: None,
};
const PAGE: &str =
    "https://www.tally.example/pricing?plan=pro&utm_source=newsletter&utm_campaign=spring";
const PAGE_SENSITIVE: &str = "https://www.tally.example/account;jsessionid=ABC123?tab=billing&token=s3cr3t&email=jane%40example.com&lang=de#top";
const REFERRER: &str = "https://www.google.com/search?q=privacy+first+analytics&hl=en";

fn city_db() -> GeoDb {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geo/GeoIP2-City-Test.mmdb");
    assert!(
        path.is_file(),
        "missing {}: run tests/fixtures/fetch-geo.sh first",
        path.display()
    );
    GeoDb::open(path).expect("open city database")
}

fn bench(c: &mut Criterion) {
    let geo = city_db();
    // A full address the test database knows (the `use_full_ip` case, the costlier one).
    let ip = FullIp::of_peer("81.2.69.142".parse::<IpAddr>().unwrap());
    c.bench_function("geo_lookup_city", |b| {
        b.iter(|| black_box(&ip).locate(&geo))
    });

    let devices = DeviceDetector::new(10_000);
    devices.detect(UA, &HINTS);
    c.bench_function("device_warm_cache_hit", |b| {
        b.iter(|| devices.detect(black_box(UA), black_box(&HINTS)))
    });
    c.bench_function("device_cold_parse", |b| {
        b.iter(|| devices.parse(black_box(UA_MOBILE), black_box(&ClientHints::default())))
    });

    let referrers = ReferrerClassifier::new();
    let spam = SpamList::new();
    let page = Url::parse(PAGE).unwrap();
    let plain_page = Url::parse("https://www.tally.example/pricing").unwrap();
    let own: &[&str] = &[];
    c.bench_function("referrer_classify_search", |b| {
        b.iter(|| referrers.classify(black_box(REFERRER), black_box(&plain_page), own))
    });
    c.bench_function("referrer_classify_campaign", |b| {
        b.iter(|| referrers.classify(black_box(REFERRER), black_box(&page), own))
    });
    c.bench_function("referrer_classify_website", |b| {
        b.iter(|| {
            referrers.classify(
                black_box("https://blog.example.org/post/1"),
                black_box(&plain_page),
                own,
            )
        })
    });
    c.bench_function("spam_is_spam", |b| {
        b.iter(|| spam.is_spam(black_box("www.blog.example.org")))
    });

    let extra: Vec<String> = Vec::new();
    c.bench_function("clean_url_plain", |b| {
        b.iter(|| clean_url(black_box(PAGE), &extra))
    });
    c.bench_function("clean_url_sensitive", |b| {
        b.iter(|| clean_url(black_box(PAGE_SENSITIVE), &extra))
    });
    c.bench_function("mask_emails_none", |b| {
        b.iter(|| mask_emails(black_box(PAGE)))
    });
    c.bench_function("mask_emails_one", |b| {
        b.iter(|| mask_emails(black_box("https://x.example/?u=jane.doe%40example.com&v=1")))
    });

    // What the pipeline does per event, device from a warm cache.
    c.bench_function("per_event_total", |b| {
        b.iter(|| {
            let url = clean_url(black_box(PAGE), &extra);
            let referrer_url = clean_url(black_box(REFERRER), &extra);
            let page = Url::parse(&url).unwrap();
            let spam = spam.is_spam("www.google.com");
            (
                black_box(&ip).locate(&geo),
                devices.detect(black_box(UA), &HINTS),
                referrers.classify(&referrer_url, &page, own),
                spam,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
