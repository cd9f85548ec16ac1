use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::{ApiError, PROBLEM_JSON};
use crate::http::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `ok`, `disabled`, or what failed.
    pub postgres: String,
    pub redis: String,
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    match tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query_scalar!("SELECT 1 AS one").fetch_one(&state.db),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err("unreachable".into())
        }
        Err(_) => Err("timed out".into()),
    }
}

async fn check_redis(client: &redis::Client) -> Result<(), String> {
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err("unreachable".into())
        }
        Err(_) => Err("timed out".into()),
    }
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Postgres (and Redis, when configured) reachable", body = Readiness),
    (status = 503, description = "A dependency is down"),
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = check_postgres(&state).await;
    let redis = match &state.redis {
        Some(client) => check_redis(client).await.map(|()| "ok"),
        None => Ok("disabled"),
    };
    match (&postgres, &redis) {
        (Ok(()), Ok(redis)) => HttpResponse::Ok().json(Readiness {
            status: "ready",
            postgres: "ok".into(),
            redis: (*redis).into(),
        }),
        _ => {
            let describe = |r: Result<&str, &String>| match r {
                Ok(s) => s.to_owned(),
                Err(e) => e.clone(),
            };
            let detail = format!(
                "not ready: postgres {}, redis {}",
                describe(postgres.as_ref().map(|()| "ok")),
                describe(redis.as_ref().map(|s| *s))
            );
            let mut problem = ApiError::Unavailable(detail).problem();
            problem.kind = "urn:rookery:problem:not-ready".into();
            HttpResponse::ServiceUnavailable()
                .content_type(PROBLEM_JSON)
                .json(problem)
        }
    }
}
