//! The REST fallbacks: the long poll and Server-Sent Events carry the same
//! events, with the same ids, as the WebSocket.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::stream::{connect, follow, next_of_type};

async fn poll(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get(&format!("/api/v1/events?{query}"), Some(token))
        .await;
    assert_eq!(res.status(), 200, "{query}");
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

#[actix_web::test]
async fn the_long_poll_answers_when_an_event_arrives_with_the_websocket_ids() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;

    // Nothing yet: an immediate empty answer that says where the stream stands.
    let empty = poll(&app, &alice.access, "wait=0").await;
    assert_eq!(empty, json!({"events": [], "last_event_id": 0}));

    // A waiting poll returns as soon as the event exists.
    let waiting = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/events?after=0&wait=30"),
            alice.access.clone(),
        );
        actix_web::rt::spawn(async move {
            let res = client.get(url).bearer_auth(token).send().await.unwrap();
            res.json::<Value>().await.unwrap()
        })
    };
    let mut ws = connect(&app, &alice.access, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let post = app.create_post(&bob.access, "for the poll").await;
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the poll answers once the event exists")
        .unwrap();
    let events = answered["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{answered}");
    assert_eq!(events[0]["type"], "feed.post");
    assert_eq!(events[0]["data"]["post_id"], post["id"]);
    let id = events[0]["id"].as_i64().unwrap();
    assert_eq!(answered["last_event_id"], id);

    // The WebSocket saw the very same event.
    let on_ws = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(on_ws["id"], events[0]["id"]);
    assert_eq!(on_ws["data"], events[0]["data"]);

    // Asking again from the start replays it; asking after it waits, then
    // answers empty, keeping the position.
    let again = poll(&app, &alice.access, "after=0&wait=5").await;
    assert_eq!(again["events"][0]["id"], id);
    let later = poll(&app, &alice.access, &format!("after={id}&wait=1")).await;
    assert_eq!(later, json!({"events": [], "last_event_id": id}));

    // Several missed events come back together, in order.
    for text in ["two", "three", "four"] {
        app.create_post(&bob.access, text).await;
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let page = poll(
            &app,
            &alice.access,
            &format!("after={}&wait=10", id + got.len() as i64),
        )
        .await;
        for e in page["events"].as_array().unwrap() {
            got.push(e["id"].as_i64().unwrap());
        }
    }
    assert_eq!(got, vec![id + 1, id + 2, id + 3]);

    // An id the log does not have asks for a resync.
    let resync = poll(&app, &alice.access, "after=999&wait=0").await;
    assert_eq!(resync["events"][0]["type"], "resync_required");
    assert_eq!(resync["events"][0]["data"]["last_event_id"], id + 3);
    assert_eq!(resync["last_event_id"], id + 3);
}

#[actix_web::test]
async fn the_long_poll_refuses_bad_input_clearly() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for query in ["wait=61", "after=-1", "after=abc", "wait=soon"] {
        let res = app
            .get(&format!("/api/v1/events?{query}"), Some(&alice.access))
            .await;
        let problem = assert_problem(res, 400).await;
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_problem(app.get("/api/v1/events?wait=0", None).await, 401).await;
    let res = app
        .get(
            &format!("/api/v1/events?wait=0&access_token={}", alice.access),
            None,
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "browsers may pass the token in the query"
    );
}

/// A server-sent-events stream being read; keeps what arrived beyond the
/// events asked for until the next read.
struct Sse {
    res: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// Reads until `n` events with data have arrived; returns their `(id, data)`.
    async fn read(&mut self, n: usize) -> Vec<(Option<i64>, Value)> {
        let mut events = Vec::new();
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                if events.len() == n {
                    return events;
                }
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let Some(data) = data {
                    events.push((id, data));
                }
            }
            if events.len() == n {
                return events;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.res.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn open_sse(app: &TestApp, token: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/api/v1/events/stream"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn server_sent_events_carry_ids_and_resume_from_last_event_id() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;

    let res = open_sse(&app, &alice.access, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let mut sse = Sse {
        res,
        buffer: String::new(),
    };
    let post = app.create_post(&bob.access, "over sse").await;
    let got = sse.read(1).await;
    let (id, event) = &got[0];
    let id = id.expect("logged events carry an id:");
    assert_eq!(event["id"], id);
    assert_eq!(event["type"], "feed.post");
    assert_eq!(event["data"]["post_id"], post["id"]);
    drop(sse);

    // Missed while disconnected, replayed on reconnect with Last-Event-ID.
    let mut missed = Vec::new();
    for text in ["two", "three"] {
        missed.push(app.create_post(&bob.access, text).await["id"].clone());
    }
    let mut sse = Sse {
        res: open_sse(&app, &alice.access, Some(&id.to_string())).await,
        buffer: String::new(),
    };
    let got = sse.read(2).await;
    let ids: Vec<Option<i64>> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![Some(id + 1), Some(id + 2)]);
    let posts: Vec<Value> = got
        .iter()
        .map(|(_, e)| e["data"]["post_id"].clone())
        .collect();
    assert_eq!(posts, missed);

    // Then live on the same stream.
    let live = app.create_post(&bob.access, "live").await;
    let got = sse.read(1).await;
    assert_eq!(got[0].0, Some(id + 3));
    assert_eq!(got[0].1["data"]["post_id"], live["id"]);

    // A Last-Event-ID that is not an id is a clear 400; no credential, 401.
    assert_problem(open_sse(&app, &alice.access, Some("yesterday")).await, 400).await;
    let res = app.get("/api/v1/events/stream", None).await;
    assert_problem(res, 401).await;
}
