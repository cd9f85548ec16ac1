//! Several server processes sharing one Postgres and one Redis: events cross
//! nodes, and a node that shuts down sends its clients away with 1001 so
//! they reconnect elsewhere and replay what they missed.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{base_database_url, drop_database, fresh_database, JWT_SECRET, PASSWORD};
use crate::stream::{close_code, connect_to, next_of_type};

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

/// A `rookery serve` process; killed when dropped.
struct Node {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(database_url: &str, redis_url: &str) -> Node {
        Node::start_with(database_url, redis_url, &[])
    }

    /// A node with settings of its own (`NAME`, value) added to its environment.
    fn start_with(database_url: &str, redis_url: &str, settings: &[(&str, &str)]) -> Node {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("ROOKERY_BIND", "127.0.0.1:0")
            .env(
                "ROOKERY_MEDIA_DIR",
                std::env::temp_dir().join("rookery-cluster-media"),
            )
            .env("ROOKERY_LOG_FORMAT", "json")
            .env("ROOKERY_LOG", "info")
            .envs(settings.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut port = None;
        let mut subscribed = false;
        let log = Arc::new(Mutex::new(Vec::new()));
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push(line.clone());
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"]
                .as_str()
                .is_some_and(|m| m.contains("subscribed to the event bus"))
            {
                subscribed = true;
            }
            if let Some(p) = event["port"].as_u64() {
                port = Some(p);
            }
            if port.is_some() && subscribed {
                break;
            }
        }
        let port = port.expect("the node logs its port");
        // Keep draining stderr so the node never blocks on a full pipe.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the node did not stop: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn register(client: &reqwest::Client, base: &str, username: &str) -> (i64, String) {
    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, token)
}

/// The cluster tests' REDIS_URL (scripts/test.sh provides one).
fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("REDIS_URL must be set for the cluster test: run it through scripts/test.sh")
}

/// Registers alice and bob on `register_on` and has alice follow bob through
/// `follow_on`; returns their access tokens.
async fn alice_follows_bob(
    client: &reqwest::Client,
    register_on: &str,
    follow_on: &str,
) -> (String, String) {
    let (_, alice) = register(client, register_on, "alice").await;
    let (bob_id, bob) = register(client, register_on, "bobby").await;
    let res = client
        .put(format!("{follow_on}/api/v1/users/{bob_id}/follow"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (alice, bob)
}

/// Changes the password of `token`'s user through the node at `base`.
async fn change_password(client: &reqwest::Client, base: &str, token: &str) {
    let res = client
        .put(format!("{base}/api/v1/me/password"))
        .bearer_auth(token)
        .json(&json!({"current_password": PASSWORD, "new_password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn post(client: &reqwest::Client, base: &str, token: &str, text: &str) -> i64 {
    let res = client
        .post(format!("{base}/api/v1/posts"))
        .bearer_auth(token)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[actix_web::test]
async fn events_cross_nodes_and_a_stopping_node_sends_clients_elsewhere() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let mut a = Node::start(&url, &redis_url);
    let mut b = Node::start(&url, &redis_url);
    let client = reqwest::Client::new();
    let (alice, bob) = alice_follows_bob(&client, &a.base, &b.base).await;

    // Alice is on node B; bob posts on node A.
    let mut ws = connect_to(&b.base, &alice, None).await;
    let first = post(&client, &a.base, &bob, "hello from node A").await;
    let posted = Instant::now();
    let event = tokio::time::timeout(Duration::from_secs(1), next_of_type(&mut ws, "feed.post"))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no feed.post on node B within a second: {:?}",
                b.log.lock().unwrap()
            )
        });
    assert_eq!(event["data"]["post_id"], first);
    let seen = event["id"].as_i64().unwrap();
    eprintln!("cross-node delivery took {:?}", posted.elapsed());

    // Node B stops: its client is told to go away (1001)...
    b.terminate();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Away));
    assert!(b.wait().success());

    // ...misses a post meanwhile, reconnects to node A and replays it.
    let missed = post(&client, &a.base, &bob, "while you were away").await;
    let mut ws = connect_to(&a.base, &alice, Some(seen)).await;
    let event = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(event["id"].as_i64().unwrap(), seen + 1);
    assert_eq!(event["data"]["post_id"], missed);

    // B said goodbye on the bus, so A forgot it at once rather than taking
    // its silence for a node it cannot hear (and bypassing its caches).
    tokio::time::sleep(rookery_actors::delivery::changes::SILENT * 2).await;
    assert!(
        !a.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("went silent")),
        "node A took the stopped node for a silent one"
    );

    a.terminate();
    assert!(a.wait().success());
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// A TCP proxy in front of Redis that the test can cut and restore: a Redis
/// outage as the nodes behind it see it. It runs on its own thread, since
/// `Node::start` blocks the test's thread while a node starts.
struct RedisLink {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl RedisLink {
    fn start(redis_url: &str) -> RedisLink {
        let rest = redis_url.trim_start_matches("redis://");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let target = authority.rsplit('@').next().unwrap_or(authority).to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("redis://{}/{path}", listener.local_addr().unwrap());
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (link_up, link_cut) = (up.clone(), cut.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !link_up.load(std::sync::atomic::Ordering::SeqCst) {
                        continue; // dropped at once: Redis is "down"
                    }
                    let target = target.clone();
                    let mut cut = link_cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            });
        });
        RedisLink { url, up, cut }
    }

    /// Cuts every connection and refuses new ones.
    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits until the node has logged `message` at least `times` times.
async fn logged(node: &Node, message: &str, times: usize) {
    let started = Instant::now();
    loop {
        let seen = node
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(message))
            .count();
        if seen >= times {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the node never logged {message:?} {times} times: {:?}",
            node.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn after_a_redis_outage_live_delivery_resumes_and_the_log_fills_the_gap() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let link = RedisLink::start(&redis_url);
    let a = Node::start(&url, &redis_url);
    // Node B reaches Redis only through the link the test cuts.
    let b = Node::start(&url, &link.url);
    let client = reqwest::Client::new();
    let (alice, bob) = alice_follows_bob(&client, &a.base, &a.base).await;
    let mut ws = connect_to(&b.base, &alice, None).await;
    let first = post(&client, &a.base, &bob, "before the outage").await;
    let event = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(event["data"]["post_id"], first);
    let seen = event["id"].as_i64().unwrap();

    link.down();
    logged(&b, "event bus subscription lost", 1).await;
    let missed = post(&client, &a.base, &bob, "during the outage").await;
    // Nothing reaches node B while Redis is away.
    assert!(
        tokio::time::timeout(
            Duration::from_millis(700),
            next_of_type(&mut ws, "feed.post")
        )
        .await
        .is_err(),
        "an event crossed a cut link"
    );

    link.restore();
    logged(&b, "subscribed to the event bus", 2).await;
    let after = post(&client, &a.base, &bob, "after the outage").await;
    // The next live event shows node B the gap; it fills it from the log first.
    let filled = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(filled["data"]["post_id"], missed);
    assert_eq!(filled["id"].as_i64().unwrap(), seen + 1);
    let live = next_of_type(&mut ws, "feed.post").await;
    assert_eq!(live["data"]["post_id"], after);
    assert_eq!(live["id"].as_i64().unwrap(), seen + 2);

    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

#[actix_web::test]
async fn a_password_change_on_one_node_closes_the_users_connections_on_the_other() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &redis_url);
    let client = reqwest::Client::new();
    let (_, alice) = register(&client, &a.base, "alice").await;
    let mut ws = connect_to(&b.base, &alice, None).await;
    crate::revocation::still_open(&mut ws).await;

    change_password(&client, &a.base, &alice).await;
    let changed = Instant::now();
    let code = close_code(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(code), 4401);
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "closed on the other node after {:?}",
        changed.elapsed()
    );
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

#[actix_web::test]
async fn a_block_on_one_node_stops_post_activity_on_the_other() {
    use crate::subscriptions::{nothing_before_pong, subscribe};
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &redis_url);
    let client = reqwest::Client::new();
    let (_, alice) = register(&client, &a.base, "alice").await;
    let (bob_id, bob) = register(&client, &a.base, "bobby").await;
    let (_, carol) = register(&client, &a.base, "carol").await;
    let (_, dave) = register(&client, &a.base, "dave").await;
    let post_id = post(&client, &a.base, &alice, "watched on node B").await;
    let mut bob_ws = connect_to(&b.base, &bob, None).await;
    let mut carol_ws = connect_to(&b.base, &carol, None).await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        assert_eq!(subscribe(ws, post_id).await["type"], "subscribed");
    }
    let comment = |text: &'static str| {
        let (client, url, dave) = (
            client.clone(),
            format!("{}/api/v1/posts/{post_id}/comments", a.base),
            dave.clone(),
        );
        async move {
            let res = client
                .post(url)
                .bearer_auth(dave)
                .json(&json!({ "text": text }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
    };
    comment("before").await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        assert_eq!(
            next_of_type(ws, "comment.created").await["data"]["text"],
            "before"
        );
        next_of_type(ws, "post.counters").await;
    }

    // Alice blocks bob through node A; node B stops telling bob at once.
    let res = client
        .put(format!("{}/api/v1/users/{bob_id}/block", a.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    comment("after").await;
    assert_eq!(
        next_of_type(&mut carol_ws, "comment.created").await["data"]["text"],
        "after"
    );
    next_of_type(&mut carol_ws, "post.counters").await;
    nothing_before_pong(&mut bob_ws).await;
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

#[actix_web::test]
async fn a_pulled_authors_post_reaches_online_followers_on_every_node_once() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    // Two followers are over the limit: the author is merged on read.
    let limit = [("ROOKERY_FANOUT_LIMIT", "1")];
    let a = Node::start_with(&url, &redis_url, &limit);
    let b = Node::start_with(&url, &redis_url, &limit);
    let client = reqwest::Client::new();
    let (star_id, star) = register(&client, &a.base, "star").await;
    let (_, alice) = register(&client, &a.base, "alice").await;
    let (carol_id, carol) = register(&client, &a.base, "carol").await;
    for token in [&alice, &carol] {
        let res = client
            .put(format!("{}/api/v1/users/{star_id}/follow", a.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // Alice is on node B only; carol on both nodes (two devices).
    let mut alice_b = connect_to(&b.base, &alice, None).await;
    let mut carol_a = connect_to(&a.base, &carol, None).await;
    let mut carol_b = connect_to(&b.base, &carol, None).await;

    let first = post(&client, &a.base, &star, "to the masses, from node A").await;
    let event = crate::pulled::next_feed_post(&mut alice_b).await;
    assert_eq!(event["data"]["post_id"], first);
    let seen = event["id"].as_i64().unwrap();
    // Each node logs the post for the followers online on it; carol, on
    // both, is logged once and hears it on both, with the same id.
    let on_a = crate::pulled::next_feed_post(&mut carol_a).await;
    let on_b = crate::pulled::next_feed_post(&mut carol_b).await;
    assert_eq!(on_a["data"]["post_id"], first);
    assert_eq!(on_a["id"], on_b["id"]);
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_events WHERE user_id = $1 AND kind = 'feed.post'",
    )
    .bind(carol_id)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(logged, 1, "carol's post logged once");
    drop(db);

    // Alice reconnects to node A and replays it from the log.
    drop(alice_b);
    let mut alice_a = connect_to(&a.base, &alice, Some(seen - 1)).await;
    let replayed = crate::pulled::next_feed_post(&mut alice_a).await;
    assert_eq!(replayed["id"].as_i64(), Some(seen));
    assert_eq!(replayed["data"]["post_id"], first);

    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// Sends `request` as is and returns the status of the answer.
async fn raw_status(base: &str, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let line = String::from_utf8_lossy(&answer[..n]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"))
}

/// actix-http refuses oversized heads before Rookery's code runs (no body can
/// be set there: see the README); it must at least not log them as errors.
#[actix_web::test]
async fn oversized_requests_are_refused_without_an_error_in_the_log() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let node = Node::start(&url, &redis_url);
    let client = reqwest::Client::new();
    // Raw requests: an HTTP client refuses to build a URI this long.
    let long_query = "q=".to_owned() + &"a".repeat(64 * 1024);
    let status = raw_status(
        &node.base,
        &format!("GET /api/v1/users/alice?{long_query} HTTP/1.1\r\nhost: x\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 400);
    let huge_query = "q=".to_owned() + &"a".repeat(1024 * 1024);
    let status = raw_status(
        &node.base,
        &format!("GET /api/v1/users/alice?{huge_query} HTTP/1.1\r\nhost: x\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 431);
    let res = client
        .get(format!("{}/healthz", node.base))
        .header("x-padding", "a".repeat(200 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    // The node still serves, and its log holds no error.
    let res = client
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let errors: Vec<String> = node
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(r#""level":"ERROR""#))
        .cloned()
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    drop(node);
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// A node that was away from the bus when a password changed finds out when
/// it is back: it checks its users' credentials anew and closes the stale ones.
#[actix_web::test]
async fn a_revocation_missed_during_a_redis_outage_closes_connections_once_back() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let link = RedisLink::start(&redis_url);
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &link.url);
    let client = reqwest::Client::new();
    let (_, alice) = register(&client, &a.base, "alice").await;
    let (_, bob) = register(&client, &a.base, "bobby").await;
    let mut alice_ws = connect_to(&b.base, &alice, None).await;
    let mut bob_ws = connect_to(&b.base, &bob, None).await;
    crate::revocation::still_open(&mut alice_ws).await;

    link.down();
    logged(&b, "event bus subscription lost", 1).await;
    change_password(&client, &a.base, &alice).await;
    // Node B cannot have heard of it.
    crate::revocation::still_open(&mut alice_ws).await;

    link.restore();
    logged(&b, "subscribed to the event bus", 2).await;
    let code = close_code(&mut alice_ws).await.expect("a close frame");
    assert_eq!(u16::from(code), 4401);
    // Bob's credentials still hold: his connection stays.
    crate::revocation::still_open(&mut bob_ws).await;
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// What bob sees of post `id` through the node at `base`: the status and the body.
async fn read_post(client: &reqwest::Client, base: &str, token: &str, id: i64) -> (u16, Value) {
    let res = client
        .get(format!("{base}/api/v1/posts/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Sends `request` to node A and waits for its answer with `status`.
async fn on_a(request: reqwest::RequestBuilder, status: u16) -> Value {
    let res = request.send().await.unwrap();
    assert_eq!(res.status().as_u16(), status);
    res.json().await.unwrap_or(Value::Null)
}

/// The contract for the read caches: after a change made on one node has
/// been answered, the other node shows it within 100 ms.
const REFLECTED_WITHIN: Duration = Duration::from_millis(100);

#[actix_web::test]
async fn every_change_made_on_one_node_shows_on_the_other_within_100_ms() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &redis_url);
    let (a_url, b_url) = (a.base.clone(), b.base.clone());
    let client = reqwest::Client::new();
    let (alice_id, alice) = register(&client, &a_url, "alice").await;
    let (bob_id, bob) = register(&client, &a_url, "bobby").await;
    let (_, carol) = register(&client, &a_url, "carol").await;
    let id = post(&client, &a_url, &alice, "the first text").await;

    // Node B reads first, so each check below would see a stale cache entry.
    let (status, seen) = read_post(&client, &b_url, &bob, id).await;
    assert_eq!(status, 200);
    assert_eq!(seen["text"], "the first text");

    // Each change: made on A, then read on B after the contract's delay.
    macro_rules! after {
        ($change:expr, $status:expr, |$seen:ident| $check:expr) => {{
            $change;
            tokio::time::sleep(REFLECTED_WITHIN).await;
            let (status, $seen) = read_post(&client, &b_url, &bob, id).await;
            assert_eq!(status, $status, "{}: {}", stringify!($change), $seen);
            assert!($check, "{}: {}", stringify!($change), $seen);
            // Read once more so the next change again meets a cached entry.
            read_post(&client, &b_url, &bob, id).await;
        }};
    }

    let posts = format!("{a_url}/api/v1/posts/{id}");
    after!(
        on_a(
            client
                .patch(&posts)
                .bearer_auth(&alice)
                .json(&json!({"text": "edited"})),
            200
        )
        .await,
        200,
        |seen| seen["text"] == "edited" && !seen["edited_at"].is_null()
    );
    after!(
        on_a(
            client
                .put(format!("{posts}/reactions"))
                .bearer_auth(&carol)
                .json(&json!({"kind": "love"})),
            200
        )
        .await,
        200,
        |seen| seen["counts"]["reactions"]["love"] == 1 && seen["counts"]["reactions_total"] == 1
    );
    after!(
        on_a(
            client
                .delete(format!("{posts}/reactions"))
                .bearer_auth(&carol),
            204
        )
        .await,
        200,
        |seen| seen["counts"]["reactions_total"] == 0
    );
    let comment: i64;
    after!(
        {
            let made = client
                .post(format!("{posts}/comments"))
                .bearer_auth(&carol)
                .json(&json!({"text": "hi"}));
            comment = on_a(made, 201).await["id"].as_i64().unwrap();
        },
        200,
        |seen| seen["counts"]["comments"] == 1
    );
    let comment_url = format!("{a_url}/api/v1/comments/{comment}");
    after!(
        on_a(client.delete(&comment_url).bearer_auth(&carol), 204).await,
        200,
        |seen| seen["counts"]["comments"] == 0
    );
    after!(
        on_a(
            client.post(format!("{posts}/views")).bearer_auth(&carol),
            200
        )
        .await,
        200,
        |seen| seen["counts"]["views"] == 1
    );
    let follow = format!("{a_url}/api/v1/users/{alice_id}/follow");
    after!(
        on_a(client.put(&follow).bearer_auth(&carol), 200).await,
        200,
        |seen| seen["author"]["followers_count"] == 1
    );
    after!(
        on_a(client.delete(&follow).bearer_auth(&carol), 204).await,
        200,
        |seen| seen["author"]["followers_count"] == 0
    );
    after!(
        on_a(
            client
                .patch(format!("{a_url}/api/v1/me"))
                .bearer_auth(&alice)
                .json(&json!({"display_name": "Alice A."})),
            200
        )
        .await,
        200,
        |seen| seen["author"]["display_name"] == "Alice A."
    );
    let block = format!("{a_url}/api/v1/users/{bob_id}/block");
    after!(
        on_a(client.put(&block).bearer_auth(&alice), 204).await,
        404,
        |seen| seen["status"] == 404
    );
    after!(
        on_a(client.delete(&block).bearer_auth(&alice), 204).await,
        200,
        |seen| seen["text"] == "edited"
    );

    // Credentials: a key and a token that node B has cached stop working
    // there once revoked on A.
    let key = on_a(
        client
            .post(format!("{a_url}/api/v1/me/api-keys"))
            .bearer_auth(&alice)
            .json(&json!({"name": "script"})),
        201,
    )
    .await;
    let (key_id, key) = (
        key["id"].as_i64().unwrap(),
        key["key"].as_str().unwrap().to_owned(),
    );
    let me_on_b = |auth: (&str, &str)| {
        client
            .get(format!("{b_url}/api/v1/me"))
            .header(auth.0, auth.1.to_owned())
            .send()
    };
    assert_eq!(me_on_b(("api-key", &key)).await.unwrap().status(), 200);
    on_a(
        client
            .delete(format!("{a_url}/api/v1/me/api-keys/{key_id}"))
            .bearer_auth(&alice),
        204,
    )
    .await;
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(me_on_b(("api-key", &key)).await.unwrap().status(), 401);

    let bearer = format!("Bearer {alice}");
    assert_eq!(
        me_on_b(("authorization", &bearer)).await.unwrap().status(),
        200
    );
    change_password(&client, &a_url, &alice).await;
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(
        me_on_b(("authorization", &bearer)).await.unwrap().status(),
        401
    );

    // The post goes: deleted by a moderator-less author, with a fresh token.
    let res = client
        .post(format!("{a_url}/api/v1/auth/login"))
        .json(&json!({"login": "alice", "password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    let alice = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    after!(
        on_a(client.delete(&posts).bearer_auth(&alice), 204).await,
        404,
        |seen| seen["status"] == 404
    );
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

#[actix_web::test]
async fn a_node_cut_off_from_redis_reads_from_postgres_rather_than_a_stale_cache() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let link = RedisLink::start(&redis_url);
    let a = Node::start(&url, &redis_url);
    // Node B hears the bus only through the link the test cuts.
    let b = Node::start(&url, &link.url);
    let client = reqwest::Client::new();
    let (_, alice) = register(&client, &a.base, "alice").await;
    let (_, bob) = register(&client, &a.base, "bobby").await;
    let id = post(&client, &a.base, &alice, "before the outage").await;
    assert_eq!(
        read_post(&client, &b.base, &bob, id).await.1["text"],
        "before the outage"
    );

    link.down();
    logged(&b, "event bus subscription lost", 1).await;
    let edit = client
        .patch(format!("{}/api/v1/posts/{id}", a.base))
        .bearer_auth(&alice)
        .json(&json!({"text": "during the outage"}));
    on_a(edit, 200).await;
    // B cannot have heard of the edit: it must not answer from its cache.
    assert_eq!(
        read_post(&client, &b.base, &bob, id).await.1["text"],
        "during the outage"
    );

    link.restore();
    logged(&b, "subscribed to the event bus", 2).await;
    let edit = client
        .patch(format!("{}/api/v1/posts/{id}", a.base))
        .bearer_auth(&alice)
        .json(&json!({"text": "after the outage"}));
    on_a(edit, 200).await;
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(
        read_post(&client, &b.base, &bob, id).await.1["text"],
        "after the outage"
    );
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// The ids of the first page of `token`'s home feed, read through `base`.
async fn feed_ids(client: &reqwest::Client, base: &str, token: &str) -> Vec<i64> {
    let res = client
        .get(format!("{base}/api/v1/feed"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_cached_feed_page_on_one_node_follows_the_changes_made_on_the_other() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &redis_url);
    let (a_url, b_url) = (a.base.clone(), b.base.clone());
    let client = reqwest::Client::new();
    let (alice, bob) = alice_follows_bob(&client, &a_url, &a_url).await;
    let first = post(&client, &a_url, &bob, "first").await;
    // Node B caches both first pages.
    let started = Instant::now();
    while !feed_ids(&client, &b_url, &alice).await.contains(&first) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never fanned out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed_ids(&client, &b_url, &bob).await, vec![first]);

    // The author's own page shows a new post at once; the follower's once
    // the fan-out has written it, which node A's supervisor announces.
    let second = post(&client, &a_url, &bob, "second").await;
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(feed_ids(&client, &b_url, &bob).await, vec![second, first]);
    let started = Instant::now();
    while feed_ids(&client, &b_url, &alice).await != vec![second, first] {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never fanned out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let res = client
        .delete(format!("{a_url}/api/v1/posts/{second}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(feed_ids(&client, &b_url, &alice).await, vec![first]);
    assert_eq!(feed_ids(&client, &b_url, &bob).await, vec![first]);

    let bob_id = client
        .get(format!("{a_url}/api/v1/me"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = client
        .delete(format!("{a_url}/api/v1/users/{bob_id}/follow"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert!(feed_ids(&client, &b_url, &alice).await.is_empty());
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}

/// The microblog feed of the key's owner through `base`: (id, liker ids) in order.
async fn tweets(client: &reqwest::Client, base: &str, key: &str) -> Vec<(i64, Vec<i64>)> {
    let res = client
        .get(format!("{base}/api/tweets"))
        .header("api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["tweets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let likers = t["likes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["user_id"].as_i64().unwrap())
                .collect();
            (t["id"].as_i64().unwrap(), likers)
        })
        .collect()
}

#[actix_web::test]
async fn a_cached_microblog_feed_on_one_node_follows_likes_and_posts_made_on_the_other() {
    let redis_url = redis_url();
    let (_base, db_name, url) = fresh_database().await;
    let a = Node::start(&url, &redis_url);
    let b = Node::start(&url, &redis_url);
    let (a_url, b_url) = (a.base.clone(), b.base.clone());
    let client = reqwest::Client::new();
    let (alice, bob) = alice_follows_bob(&client, &a_url, &a_url).await;
    let key = client
        .post(format!("{a_url}/api/v1/me/api-keys"))
        .bearer_auth(&alice)
        .json(&json!({"name": "web client"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_id = client
        .get(format!("{a_url}/api/v1/me"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let older = post(&client, &a_url, &bob, "older").await;
    let newer = post(&client, &a_url, &bob, "newer").await;
    // Node B caches the candidates, the posts and their likers.
    assert_eq!(
        tweets(&client, &b_url, &key).await,
        vec![(newer, vec![]), (older, vec![])]
    );

    let like = format!("{a_url}/api/tweets/{older}/likes");
    let res = client
        .post(&like)
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(
        tweets(&client, &b_url, &key).await,
        vec![(older, vec![alice_id]), (newer, vec![])],
        "the liked tweet first, with its liker"
    );

    let res = client
        .delete(&like)
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(
        tweets(&client, &b_url, &key).await,
        vec![(newer, vec![]), (older, vec![])]
    );

    let newest = post(&client, &a_url, &bob, "newest").await;
    tokio::time::sleep(REFLECTED_WITHIN).await;
    assert_eq!(
        tweets(&client, &b_url, &key).await,
        vec![(newest, vec![]), (newer, vec![]), (older, vec![])]
    );
    drop((a, b));
    let _ = drop_database(&base_database_url(), &db_name).await;
}
