//! The Redis connection the replicas share state through: one
//! multiplexed connection per process (redis-rs's connection manager,
//! which reconnects by itself), every command bounded by the catalog's
//! `redis.timeout`.
//!
//! Rate limits take their tokens in one atomic script per checked call
//! (GCRA, as governor does in memory: one stored "theoretical arrival
//! time" per bucket, expiring once the bucket is full again), on Redis's
//! own clock so replicas with skewed clocks agree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::events::{self, Event};
use crate::config::{Rate, RedisConfig};

/// Takes one token from each bucket `KEYS[i]` (emission interval
/// `ARGV[2i-1]` µs, burst `ARGV[2i]`) that has one, and returns the
/// longest wait, in µs, of those that had none and which bucket that was
/// (`{0, 0}`: every bucket allowed).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local longest, at = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  local wait = next_tat - now - burst * interval
  if wait > 0 then
    if wait > longest then longest, at = wait, i end
  else
    redis.call('SET', key, next_tat, 'PX', math.ceil((next_tat - now) / 1000))
  end
end
return {longest, at}
";

/// The shared store, and whether it answered last time.
pub struct Shared {
    config: RedisConfig,
    connection: ConnectionManager,
    script: redis::Script,
    up: AtomicBool,
    /// Ends the subscription to the other replicas' events with the store.
    _hearing: DropGuard,
}

/// Redis did not answer, or not in time: the caller falls back.
#[derive(Debug, thiserror::Error)]
#[error("redis unavailable: {0}")]
pub struct Unavailable(String);

impl Shared {
    /// A store for `config`; it connects on first use, so a Redis that
    /// is down at start delays nothing. The other replicas' events go to
    /// `events`.
    pub fn new(config: &RedisConfig, events: broadcast::Sender<Event>) -> Result<Self, String> {
        let url = config.url.resolve()?;
        let client = redis::Client::open(url).map_err(|e| format!("invalid redis url: {e}"))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(5));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| format!("redis: {e}"))?;
        let hearing = CancellationToken::new();
        let channel = format!("{}events", config.key_prefix);
        tokio::spawn(events::subscribe(client, channel, events, hearing.clone()));
        Ok(Self {
            config: config.clone(),
            connection,
            script: redis::Script::new(TAKE),
            up: AtomicBool::new(true),
            _hearing: hearing.drop_guard(),
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Whether the last command was answered.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The full name of a key of ours.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.config.key_prefix)
    }

    /// Take a token from each of `buckets` (key, rate) that has one; the
    /// longest wait of those that had none, and its index in `buckets`.
    pub async fn take(
        &self,
        buckets: &[(String, Rate)],
    ) -> Result<Option<(usize, Duration)>, Unavailable> {
        let mut invocation = self.script.prepare_invoke();
        for (key, rate) in buckets {
            let interval = rate.replenish_interval().as_micros().max(1) as u64;
            invocation.key(key).arg(interval).arg(rate.burst);
        }
        let mut connection = self.connection.clone();
        let answer = invocation.invoke_async::<(u64, usize)>(&mut connection);
        let (wait, at) = self.bounded(answer).await?;
        Ok((at > 0).then(|| (at - 1, Duration::from_micros(wait))))
    }

    /// The text stored under our key `name`, if there is one.
    pub async fn get(&self, name: &str) -> Result<Option<String>, Unavailable> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(name));
        self.run(command).await
    }

    /// Store `value` under our key `name` for `ttl`.
    pub async fn set(&self, name: &str, value: &str, ttl: Duration) -> Result<(), Unavailable> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(name))
            .arg(value)
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        self.run(command).await
    }

    /// Delete our key `name`.
    pub async fn delete(&self, name: &str) -> Result<(), Unavailable> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(name));
        self.run(command).await
    }

    /// Let our key `name` live `ttl` longer.
    pub async fn touch(&self, name: &str, ttl: Duration) -> Result<(), Unavailable> {
        let mut command = redis::cmd("EXPIRE");
        command.arg(self.key(name)).arg(ttl.as_secs().max(1));
        self.run(command).await
    }

    /// Tell the other replicas `event`. Fire and forget: an event only
    /// hurries along what they learn anyway (see [`events`]).
    pub fn publish(self: &std::sync::Arc<Self>, event: Event) {
        let shared = self.clone();
        let text = events::encode(event);
        tokio::spawn(async move {
            let mut command = redis::cmd("PUBLISH");
            command.arg(shared.key("events")).arg(text);
            if let Err(error) = shared.run::<()>(command).await {
                tracing::debug!(%error, "cannot tell the other replicas");
            }
        });
    }

    /// One command, bounded by the timeout.
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, Unavailable> {
        let mut connection = self.connection.clone();
        self.bounded(command.query_async::<T>(&mut connection))
            .await
    }

    /// Redis's `answer`, if it comes within the timeout; noted either way.
    async fn bounded<T>(
        &self,
        answer: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        let result = match tokio::time::timeout(self.config.timeout, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Unavailable(error.to_string())),
            Err(_) => Err(Unavailable("no answer in time".into())),
        };
        self.note(result.is_ok());
        result
    }

    /// Log a change between answering and not, once per change.
    fn note(&self, answered: bool) {
        if self.up.swap(answered, Ordering::Relaxed) != answered {
            match answered {
                true => tracing::info!(
                    "redis answers again: the replicas share their rate limits and definitions again"
                ),
                false => tracing::warn!(
                    "redis does not answer: each replica keeps its own rate limits and definitions until it does"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedisUrl;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: RedisUrl::Plain(url.into()),
            key_prefix: "test:".into(),
            timeout: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn tls_urls_are_taken_and_malformed_ones_refused() {
        let (events, _) = broadcast::channel(1);
        // Built without TLS support, a `rediss://` URL would be refused
        // here. Connecting is lazy: nothing listens there; the first
        // command says so, and the client is then down, not broken.
        let tls = Shared::new(&config("rediss://127.0.0.1:1/0"), events.clone()).unwrap();
        assert!(tls.get("k").await.is_err(), "nothing listens there");
        assert!(!tls.is_up());
        // The machine's Redis (database 14, a key of this test's own).
        let plain = Shared::new(&config("redis://127.0.0.1:6379/14"), events.clone()).unwrap();
        let ttl = Duration::from_secs(30);
        plain.set("tls-test", "answered", ttl).await.unwrap();
        let answered = plain.get("tls-test").await.unwrap();
        assert_eq!(answered.as_deref(), Some("answered"));
        plain.delete("tls-test").await.unwrap();
        assert!(plain.is_up());
        let error = Shared::new(&config("http://127.0.0.1:1/0"), events)
            .err()
            .expect("not a redis url");
        assert!(error.contains("invalid redis url"), "{error}");
    }
}
