//! What one replica tells the others, over Redis pub/sub on the channel
//! `<key_prefix>events`: an upstream's lists changed, a session ended, a
//! resource a session subscribed to changed, a client answered a request
//! another replica relayed. Pub/sub keeps nothing: a replica that is not
//! subscribed when an event is sent misses it. Most events only hurry
//! along what a replica learns by itself (its own upstream sessions hear
//! list changes, an ended session idles out); a resource update or a
//! client's answer sent meanwhile is lost, as a message to a client whose
//! connection dropped would be.
//!
//! One subscriber connection per store, reconnecting by itself and pinged
//! so a connection that went silent is noticed. Each time it is subscribed
//! it says so ([`Event::Subscribed`]), and the replica lists every server
//! again: a list change it missed while not subscribed is caught up on.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How often the subscriber connection is pinged, and how long a ping
/// may take.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long to wait before subscribing again after a failure.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(500);

/// An event between replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The server (by logical name) said its lists changed: list it again.
    ListChanged { server: Arc<str> },
    /// The client ended the session (`DELETE`): end it here too.
    SessionClosed { session: Arc<str> },
    /// A resource the session subscribed to changed; the replica holding
    /// the session's stream tells the client.
    ResourceUpdated { session: Arc<str>, uri: Arc<str> },
    /// A client's answer (a JSON-RPC response) to a request a replica
    /// relayed to it during a call; the replica waiting for it takes it.
    ClientAnswer {
        session: Arc<str>,
        message: serde_json::Value,
    },
    /// This replica is hearing the others again (or for the first time):
    /// what it missed meanwhile is lost, so what it can catch up on, it
    /// should (list every server again). Never sent between replicas.
    #[serde(skip)]
    Subscribed,
}

/// An event on the wire, with the replica that sent it (which ignores
/// its own).
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: Arc<str>,
    #[serde(flatten)]
    event: Event,
}

/// This process's name among the replicas: random, made once.
fn replica() -> &'static Arc<str> {
    static REPLICA: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    REPLICA.get_or_init(|| {
        let bytes: [u8; 8] = rand::random();
        hex::encode(bytes).into()
    })
}

/// The text published for `event`.
pub(super) fn encode(event: Event) -> String {
    let envelope = Envelope {
        from: replica().clone(),
        event,
    };
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// The event in `text`, unless this replica sent it or it is not one.
fn decode(text: &str) -> Option<Event> {
    let envelope: Envelope = serde_json::from_str(text).ok()?;
    (envelope.from != *replica()).then_some(envelope.event)
}

/// Until `stop`: hear the other replicas on `channel` and pass their
/// events to `events`.
pub(super) async fn subscribe(
    client: redis::Client,
    channel: String,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            (heard, error) = listen(&client, &channel, &events) => {
                if heard {
                    tracing::warn!(%error, "lost the subscription to the other replicas' events; subscribing again");
                } else {
                    tracing::debug!(%error, "not hearing the other replicas; subscribing again");
                }
            }
            _ = stop.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One subscription, until its connection fails or stops answering pings:
/// whether it was subscribed, and why it ended.
async fn listen(
    client: &redis::Client,
    channel: &str,
    events: &broadcast::Sender<Event>,
) -> (bool, redis::RedisError) {
    let connected = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub.split())
    };
    let (mut sink, mut messages) = match tokio::time::timeout(PING_EVERY, connected).await {
        Ok(Ok(split)) => split,
        Ok(Err(error)) => return (false, error),
        Err(_) => return (false, timed_out("subscribing")),
    };
    let _ = events.send(Event::Subscribed);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                    return (true, redis::RedisError::from(reset));
                };
                let event = message.get_payload::<String>().ok().as_deref().and_then(decode);
                if let Some(event) = event {
                    let _ = events.send(event);
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(PING_EVERY, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return (true, error),
                    Err(_) => return (true, timed_out("a ping")),
                }
            }
        }
    }
}

fn timed_out(what: &str) -> redis::RedisError {
    let error = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"));
    redis::RedisError::from(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_ignores_its_own_events_and_reads_the_others() {
        let event = Event::ListChanged {
            server: "marketdata".into(),
        };
        assert_eq!(decode(&encode(event.clone())), None);
        let other =
            serde_json::json!({"from": "another", "event": "list_changed", "server": "marketdata"});
        assert_eq!(decode(&other.to_string()), Some(event));
        let answer = serde_json::json!({
            "from": "another", "event": "client_answer", "session": "s1",
            "message": {"jsonrpc": "2.0", "id": 3, "result": {}},
        });
        assert!(matches!(
            decode(&answer.to_string()),
            Some(Event::ClientAnswer { session, .. }) if &*session == "s1"
        ));
        assert_eq!(decode("not json"), None);
        // Another replica cannot make this one believe it resubscribed.
        let subscribed = r#"{"from": "another", "event": "subscribed"}"#;
        assert_eq!(decode(subscribed), None);
        assert_eq!(decode(r#"{"from": "another", "event": "unknown"}"#), None);
    }
}
