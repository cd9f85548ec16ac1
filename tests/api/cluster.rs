//! Several server processes sharing one Postgres and one Redis: events cross
//! nodes, and a node that shuts down sends its clients away with 1001 so
//! they reconnect elsewhere and replay what they missed.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{base_database_url, fresh_database, JWT_SECRET, PASSWORD};
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
            .env("LOG_FORMAT", "json")
            .env("ROOKERY_LOG", "info")
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
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("REDIS_URL must be set for the cluster test: run it through scripts/test.sh");
    let (_base, db_name, url) = fresh_database().await;
    let mut a = Node::start(&url, &redis_url);
    let mut b = Node::start(&url, &redis_url);
    let client = reqwest::Client::new();
    let (_, alice) = register(&client, &a.base, "alice").await;
    let (bob_id, bob) = register(&client, &a.base, "bobby").await;
    let res = client
        .put(format!("{}/api/v1/users/{bob_id}/follow", b.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

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

    a.terminate();
    assert!(a.wait().success());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base_database_url())
        .await
        .unwrap();
    let _ = sqlx::Executor::execute(
        &mut conn,
        format!(r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#).as_str(),
    )
    .await;
}
