//! The WebSocket stream, through a real WebSocket client.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::{eventually, spawn_app, spawn_app_with, TestApp};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Waits (up to 10 s) until `user_id`'s event log holds `n` events.
async fn wait_for_log(app: &TestApp, user_id: i64, n: i64) {
    for _ in 0..400 {
        let logged = app
            .count(
                "SELECT count(*) FROM user_events WHERE user_id = $1",
                user_id,
            )
            .await;
        if logged == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn connect(app: &TestApp, token: &str, last_event_id: Option<i64>) -> Ws {
    connect_to(&app.address, token, last_event_id).await
}

/// Opens the stream of the server at `address` (`http://host:port`).
pub async fn connect_to(address: &str, token: &str, last_event_id: Option<i64>) -> Ws {
    let base = address.replace("http://", "ws://");
    let url = match last_event_id {
        Some(id) => format!("{base}/api/v1/stream?last_event_id={id}"),
        None => format!("{base}/api/v1/stream"),
    };
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(response.status(), 101);
    ws
}

/// The next JSON event, skipping control frames; fails after 30 s (generous:
/// a loaded CI machine is slow, and a hang fails all the same).
pub async fn next_event(ws: &mut Ws) -> Value {
    within_30s(async {
        loop {
            let frame = ws
                .next()
                .await
                .expect("the stream is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
}

/// The next event of type `kind`, skipping others (notifications interleave).
pub async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    within_30s(async {
        loop {
            let event = next_event(ws).await;
            if event["type"] == kind {
                return event;
            }
        }
    })
    .await
}

/// One deadline for the whole wait: the server's heartbeat pings, or events
/// of other types, must not keep a test waiting for ever on an event that
/// never comes.
async fn within_30s<T>(wait: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the awaited event within 30 s")
}

/// The close frame's code, reading past anything before it.
pub async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

pub async fn follow(app: &TestApp, token: &str, id: i64) {
    assert_eq!(
        app.put(
            &format!("/api/v1/users/{id}/follow"),
            Some(token),
            &json!({})
        )
        .await
        .status(),
        200
    );
}

#[actix_web::test]
async fn unauthenticated_upgrades_are_refused_with_401() {
    let app = spawn_app().await;
    let base = app.address.replace("http://", "ws://");
    for url in [
        format!("{base}/api/v1/stream"),
        format!("{base}/api/v1/stream?access_token=garbage"),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected a 401, got {:?}", other.map(|(_, r)| r.status())),
        }
    }
    // A plain GET without the upgrade is a clear 400.
    let alice = app.user("alice").await;
    let res = app.get("/api/v1/stream", Some(&alice.access)).await;
    assert_eq!(res.status(), 400);
}

#[actix_web::test]
async fn followers_receive_new_posts_and_notifications_on_every_connection() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    let mut phone = connect(&app, &alice.access, None).await;
    // Browsers authenticate with a query parameter.
    let base = app.address.replace("http://", "ws://");
    let (mut laptop, _) = tokio_tungstenite::connect_async(format!(
        "{base}/api/v1/stream?access_token={}",
        alice.access
    ))
    .await
    .unwrap();

    let post = app.create_post(&bob.access, "fresh from bob").await;
    for ws in [&mut phone, &mut laptop] {
        let event = next_event(ws).await;
        assert_eq!(event["type"], "feed.post");
        assert_eq!(event["data"]["post_id"], post["id"]);
        assert_eq!(event["data"]["author"]["username"], "bobby");
        assert!(event["id"].as_i64().unwrap() >= 1);
        assert!(event["ts"].is_string());
    }

    // Bob follows alice: she is notified live.
    follow(&app, &bob.access, alice.id).await;
    let first = next_event(&mut phone).await;
    assert_eq!(first["type"], "notification");
    assert_eq!(first["data"]["kind"], "follow");
    assert_eq!(first["data"]["actor_id"], bob.id);
    assert_eq!(first["data"]["unread_count"], 1);
    let on_laptop = next_event(&mut laptop).await;
    assert_eq!(on_laptop["id"], first["id"]);

    // Reading them on one device clears the badge on every other.
    let res = app
        .post(
            "/api/v1/notifications/read",
            Some(&alice.access),
            &json!({"all": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    for ws in [&mut phone, &mut laptop] {
        let read = next_of_type(ws, "notifications.read").await;
        assert_eq!(read["data"]["unread_count"], 0);
        assert_eq!(read["data"]["all"], true);
        assert!(read["id"].as_i64().unwrap() > first["id"].as_i64().unwrap());
    }
}

#[actix_web::test]
async fn reconnecting_with_last_event_id_replays_exactly_what_was_missed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    let mut ws = connect(&app, &alice.access, None).await;
    app.create_post(&bob.access, "one").await;
    let seen = next_event(&mut ws).await;
    let last = seen["id"].as_i64().unwrap();
    ws.close(None).await.unwrap();

    let mut missed = Vec::new();
    for text in ["two", "three", "four"] {
        missed.push(
            app.create_post(&bob.access, text).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // Wait until the three are in the log.
    wait_for_log(&app, alice.id, 4).await;

    let mut ws = connect(&app, &alice.access, Some(last)).await;
    let mut ids = Vec::new();
    let mut posts = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut ws).await;
        ids.push(event["id"].as_i64().unwrap());
        posts.push(event["data"]["post_id"].as_i64().unwrap());
    }
    assert_eq!(
        ids,
        vec![last + 1, last + 2, last + 3],
        "in order, no gap, no duplicate"
    );
    assert_eq!(posts, missed);
    // Then live, continuing the same sequence.
    let live = app.create_post(&bob.access, "five").await["id"]
        .as_i64()
        .unwrap();
    let event = next_event(&mut ws).await;
    assert_eq!(event["id"].as_i64().unwrap(), last + 4);
    assert_eq!(event["data"]["post_id"], live);
}

#[actix_web::test]
async fn a_deleted_users_events_go_with_them_and_no_one_elses() {
    // The log has no per-row foreign key (it cost the fan-out a row lock on
    // `users` per event); a trigger on the stream counter cascades instead.
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    follow(&app, &carol.access, bob.id).await;
    app.create_post(&bob.access, "for both").await;
    wait_for_log(&app, alice.id, 1).await;
    wait_for_log(&app, carol.id, 1).await;
    const EVENTS: &str = "SELECT count(*) FROM user_events WHERE user_id = $1";
    const STREAMS: &str = "SELECT count(*) FROM user_event_seq WHERE user_id = $1";
    assert_eq!(app.count(EVENTS, alice.id).await, 1);
    assert_eq!(app.count(STREAMS, alice.id).await, 1);

    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(alice.id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.count(EVENTS, alice.id).await, 0);
    assert_eq!(app.count(STREAMS, alice.id).await, 0);
    assert_eq!(app.count(EVENTS, carol.id).await, 1);
}

#[actix_web::test]
async fn an_id_older_than_the_log_asks_for_a_resync() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    sqlx::query(
        "INSERT INTO user_event_seq (user_id, last_id, pruned_through) VALUES ($1, 5000, 3000)",
    )
    .bind(alice.id)
    .execute(&app.db)
    .await
    .unwrap();
    let mut ws = connect(&app, &alice.access, Some(10)).await;
    let event = next_event(&mut ws).await;
    assert_eq!(event["type"], "resync_required");
    assert!(event["id"].is_null());
}

#[actix_web::test]
async fn pruning_keeps_a_day_or_the_last_thousand_and_old_ids_then_resync() {
    use rookery_actors::delivery::log::{KEEP_HOURS, KEEP_LAST};
    let app = spawn_app().await;
    let old = app.user("oldtimer").await; // KEEP_LAST + 10 events, all old
    let few = app.user("fewold").await; // 5 events, all old
    let fresh = app.user("freshone").await; // KEEP_LAST + 10 events, all recent
    for (user, n, age_hours) in [
        (&old, KEEP_LAST + 10, KEEP_HOURS * 2),
        (&few, 5, KEEP_HOURS * 2),
        (&fresh, KEEP_LAST + 10, 1),
    ] {
        sqlx::query("INSERT INTO user_event_seq (user_id, last_id) VALUES ($1, $2)")
            .bind(user.id)
            .bind(n)
            .execute(&app.db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO user_events (user_id, id, kind, data, created_at)
             SELECT $1, g, 'notification', '{}', now() - make_interval(hours => $3::int)
             FROM generate_series(1, $2) g",
        )
        .bind(user.id)
        .bind(n)
        .bind(i32::try_from(age_hours).unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    }

    let streams = rookery_actors::delivery::log::prune(&app.db).await.unwrap();
    assert_eq!(streams, 1, "only the old, long stream is pruned");
    let kept = |user_id: i64| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT count(e.id), COALESCE(min(e.id), 0), s.pruned_through
                 FROM user_event_seq s LEFT JOIN user_events e ON e.user_id = s.user_id
                 WHERE s.user_id = $1 GROUP BY s.pruned_through",
            )
            .bind(user_id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(kept(old.id).await, (KEEP_LAST, 11, 10));
    assert_eq!(kept(few.id).await, (5, 1, 0));
    assert_eq!(kept(fresh.id).await, (KEEP_LAST + 10, 1, 0));

    // Replaying from before what was kept asks for a resync; from the
    // oldest kept event on, it replays.
    let mut ws = connect(&app, &old.access, Some(5)).await;
    assert_eq!(next_event(&mut ws).await["type"], "resync_required");
    let mut ws = connect(&app, &old.access, Some(KEEP_LAST + 9)).await;
    let event = next_event(&mut ws).await;
    assert_eq!(event["id"], KEEP_LAST + 10);
}

#[actix_web::test]
async fn client_messages_are_answered_and_bad_ones_named() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let post = app.create_post(&alice.access, "watch me").await["id"]
        .as_i64()
        .unwrap();
    let mut ws = connect(&app, &alice.access, None).await;

    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_event(&mut ws).await["type"], "pong");
    for bad in ["not json", r#"{"type":"dance"}"#, r#"{"type":"subscribe"}"#] {
        ws.send(Message::text(bad)).await.unwrap();
        let event = next_event(&mut ws).await;
        assert_eq!(event["type"], "error", "{bad}");
        assert!(event["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Still open: subscribe to live counters of a post.
    ws.send(Message::text(
        json!({"type": "subscribe", "post_id": post}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_event(&mut ws).await["type"], "subscribed");
    let bob = app.user("bobby").await;
    app.put(
        &format!("/api/v1/posts/{post}/reactions"),
        Some(&bob.access),
        &json!({"kind": "love"}),
    )
    .await;
    let counters = next_of_type(&mut ws, "post.counters").await;
    assert_eq!(counters["data"]["reactions"]["love"], 1);
    app.post(
        &format!("/api/v1/posts/{post}/comments"),
        Some(&bob.access),
        &json!({"text": "nice"}),
    )
    .await;
    let comment = next_of_type(&mut ws, "comment.created").await;
    assert_eq!(comment["data"]["text"], "nice");
    assert!(
        comment["id"].is_null(),
        "post activity is not part of the replayable log"
    );
}

#[actix_web::test]
async fn oversized_and_binary_frames_close_the_connection() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = connect(&app, &alice.access, None).await;
    ws.send(Message::text("x".repeat(70 * 1024))).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Size));

    let mut ws = connect(&app, &alice.access, None).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Unsupported));
}

/// How many users have a session on the app's node.
async fn online(app: &TestApp) -> usize {
    app.engine
        .registry()
        .send(rookery_actors::delivery::registry::OnlineCount)
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_clients_close_is_answered_with_its_code_and_its_session_stops() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = connect(&app, &alice.access, None).await;
    assert_eq!(online(&app).await, 1);
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4000),
        reason: "done".into(),
    }))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Library(4000)));
    eventually(
        "the session actor to stop with its last connection",
        || async { online(&app).await == 0 },
    )
    .await;
}

#[actix_web::test]
async fn a_client_that_misses_pongs_is_closed() {
    let app = spawn_app_with(|s| s.realtime.ws_heartbeat = Duration::from_secs(1)).await;
    let alice = app.user("alice").await;
    let mut ws = connect(&app, &alice.access, None).await;
    // Not reading means not answering pings; after two missed pongs the server closes.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut saw_ping = false;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Ping(_))) => saw_ping = true,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert!(saw_ping);
    assert_eq!(code, Some(CloseCode::Policy));
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_cut_off_while_a_fast_one_keeps_receiving() {
    let app = spawn_app_with(|s| s.realtime.ws_send_queue = 8).await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    let mut fast = connect(&app, &alice.access, None).await;
    // A client that stopped reading is, to the session, a send queue nobody
    // drains (over TCP, the kernel's buffers first take a megabyte or so).
    let mut slow = app
        .engine
        .attach(
            alice.id,
            None,
            rookery_actors::delivery::session::ConnKind::WebSocket,
            rookery_actors::delivery::session::Credential::AccessToken { version: 0 },
        )
        .await
        .unwrap();

    // More than the queue plus its overflow (8 + 4 * 8) can hold.
    const POSTS: usize = 60;
    let mut posted = Vec::new();
    for i in 0..POSTS {
        posted.push(app.create_post(&bob.access, &format!("post {i}")).await["id"].clone());
    }
    let mut received = Vec::new();
    while received.len() < POSTS {
        received.push(next_of_type(&mut fast, "feed.post").await["data"]["post_id"].clone());
    }
    assert_eq!(received, posted, "the fast client got everything, in order");
    let reason = slow.cut_reason().expect("the slow client was cut off");
    assert_eq!(reason.code, actix_ws::CloseCode::Again);
    assert!(reason
        .description
        .unwrap_or_default()
        .contains("last_event_id"));
}

#[actix_web::test]
async fn a_long_replay_is_paged_and_never_cuts_a_reading_client() {
    // Far more missed events than the send queue and its overflow hold.
    let app = spawn_app_with(|s| s.realtime.ws_send_queue = 4).await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    const MISSED: i64 = 60;
    for i in 0..MISSED {
        app.create_post(&bob.access, &format!("missed {i}")).await;
    }
    wait_for_log(&app, alice.id, MISSED).await;
    let mut ws = connect(&app, &alice.access, Some(0)).await;
    for expected in 1..=MISSED {
        let event = next_of_type(&mut ws, "feed.post").await;
        assert_eq!(event["id"].as_i64().unwrap(), expected);
    }
    // And live after it, on the same connection.
    let live = app.create_post(&bob.access, "live").await;
    let event = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(event["id"].as_i64().unwrap(), MISSED + 1);
    assert_eq!(event["data"]["post_id"], live["id"]);
}
