//! Events reach NATS JetStream: a node started with `--nats-url` relays its
//! outbox to the stream `REEL_EVENTS`; an alert that fires arrives as
//! `reel.events.alert.fired`, and an event written while NATS is down is
//! delivered once it is back (nothing in the outbox is lost).

mod common;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(port: u16, store: &std::path::Path) -> Nats {
    let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nats-server is not installed: apt-get install nats-server (scripts/setup --test does)");
    let child = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Nats(child)
}

/// The next message on the stream's consumer, as JSON with its subject.
async fn next(messages: &mut async_nats::jetstream::consumer::pull::Stream, within: Duration) -> (String, Value) {
    let msg = tokio::time::timeout(within, messages.next())
        .await
        .expect("an event within the deadline")
        .expect("stream open")
        .expect("message");
    let subject = msg.subject.to_string();
    let body: Value = serde_json::from_slice(&msg.payload).expect("json payload");
    msg.ack().await.expect("ack");
    (subject, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_events_are_relayed_to_jetstream_and_survive_an_outage() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let js_dir = dir.path().join("jetstream");
    let mut nats = nats_server(port, &js_dir);
    let url = format!("nats://127.0.0.1:{port}");
    let data = dir.path().join("data");
    let args = ["serve", "--data-dir", data.to_str().expect("utf-8"), "--nats-url", &url];
    let mut server = start(&args).await;
    let mut base = server.base.clone();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    // A rule that holds at once (Prometheus style), so an alert fires.
    let rule_json = json!({"name": "always", "kind": "promql", "expr": "vector(1) > 0", "for_s": 0});
    let rule = post(&http, format!("{base}/api/v1/alert-rules"), None, rule_json).await.expect("rule created");
    let rule_id = rule["id"].as_str().expect("rule id").to_string();

    // The relay creates the stream; read it with a durable consumer.
    let client = async_nats::connect(&url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        if let Ok(s) = js.get_stream("REEL_EVENTS").await {
            break s;
        }
        assert!(Instant::now() < deadline, "the relay did not create REEL_EVENTS");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let consumer = stream
        .get_or_create_consumer(
            "test",
            async_nats::jetstream::consumer::pull::Config { durable_name: Some("test".into()), ..Default::default() },
        )
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let (subject, fired) = next(&mut messages, Duration::from_secs(45)).await;
    assert_eq!(subject, "reel.events.alert.fired");
    assert_eq!(fired["kind"], "alert.fired");
    let alerts: Value = http.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
    let alert = alerts["alerts"].as_array().and_then(|a| a.first()).cloned().expect("the alert");
    assert_eq!(fired["subject"], alert["id"], "the event names the alert");
    assert_eq!(alert["rule_id"], rule_id.as_str());

    // A restart picks the firing alert up instead of firing it again.
    drop(server);
    server = start(&args).await;
    base = server.base.clone();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let alerts: Value = http.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
    let of_rule: Vec<&Value> = alerts["alerts"].as_array().expect("alerts").iter().filter(|a| a["rule_id"] == rule_id.as_str()).collect();
    assert_eq!(of_rule.len(), 1, "one alert across the restart: {alerts}");
    assert_eq!(of_rule[0]["state"], "firing");

    // NATS goes away; the alert resolves meanwhile (its rule is deleted).
    drop(messages);
    drop(nats);
    let del = http.delete(format!("{base}/api/v1/alert-rules/{rule_id}")).send().await.expect("delete rule");
    assert!(del.status().is_success(), "{}", del.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events: Value = http.get(format!("{base}/api/v1/events")).send().await.expect("events").json().await.expect("json");
        if events["events"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "alert.resolved")) {
            break;
        }
        assert!(Instant::now() < deadline, "the alert did not resolve: {events}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Back up (same storage): the event written during the outage arrives.
    nats = nats_server(port, &js_dir);
    let client = async_nats::connect(&url).await.expect("reconnect");
    let js = async_nats::jetstream::new(client);
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        js.get_stream("REEL_EVENTS").await.expect("stream kept").get_consumer("test").await.expect("durable consumer kept");
    let mut messages = consumer.messages().await.expect("messages");
    let (subject, resolved) = next(&mut messages, Duration::from_secs(60)).await;
    assert_eq!(subject, "reel.events.alert.resolved");
    assert_eq!(resolved["subject"], alert["id"]);
    drop(nats);
    drop(server);
}
