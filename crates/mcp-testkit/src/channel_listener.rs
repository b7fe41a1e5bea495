//! A `redis-cli SSUBSCRIBE` on one sharded channel, for tests that watch
//! what the replicas send each other there (the acks a replica receives on
//! its own channel, for instance) without taking part in the fleet.

use std::{
    io::BufRead,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::RedisServer;

/// The messages published on one sharded channel, as a `redis-cli`
/// subscribed to it prints them; the process is killed when dropped.
pub struct ChannelListener {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChannelListener {
    /// Subscribes to sharded `channel` on `redis` and waits (at most 5 s)
    /// until Redis counts the subscription, so that nothing published after
    /// this returns is missed. Panics when it does not.
    pub async fn start(redis: &RedisServer, channel: &str) -> Self {
        let mut child = Command::new("redis-cli")
            .args(["-p", &redis.port().to_string(), "SSUBSCRIBE", channel])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli on PATH");
        let stdout = child.stdout.take().expect("redis-cli's output");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        while redis
            .cli(&["PUBSUB", "SHARDNUMSUB", channel])
            .lines()
            .nth(1)
            != Some("1")
        {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redis-cli did not subscribe to {channel}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, lines }
    }

    /// The JSON messages published so far and until `count` have arrived or
    /// `within` has passed (`redis-cli` prints each message's kind, channel
    /// and payload on lines of their own: the payloads are the lines that
    /// parse as JSON objects).
    pub fn json_messages(&self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        while messages.len() < count && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50))
                && line.starts_with('{')
                && let Ok(message) = serde_json::from_str(&line)
            {
                messages.push(message);
            }
        }
        messages
    }
}

impl Drop for ChannelListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
