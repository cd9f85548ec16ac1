//! Database pool gauges and supervisor restarts, read at scrape time.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGauge, Opts};
use sqlx::PgPool;

pub struct PoolCollector {
    pool: PgPool,
    size: IntGauge,
    idle: IntGauge,
    max: IntGauge,
}

impl PoolCollector {
    pub fn new(pool: PgPool) -> Self {
        let gauge = |name: &str, help: &str| {
            // The names are constants, valid by construction.
            IntGauge::with_opts(Opts::new(name, help).namespace("rookery"))
                .expect("valid gauge name")
        };
        Self {
            size: gauge(
                "db_pool_connections",
                "Open PostgreSQL connections in the pool",
            ),
            idle: gauge(
                "db_pool_idle_connections",
                "Idle PostgreSQL connections in the pool",
            ),
            max: gauge(
                "db_pool_max_connections",
                "Largest number of PostgreSQL connections the pool may open",
            ),
            pool,
        }
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        [&self.size, &self.idle, &self.max]
            .into_iter()
            .flat_map(|g| g.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.size.set(i64::from(self.pool.size()));
        self.idle
            .set(i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX));
        self.max
            .set(i64::from(self.pool.options().get_max_connections()));
        [&self.size, &self.idle, &self.max]
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}

/// `rookery_supervisor_restarts_total{supervisor}`: how often each of the
/// engine's supervisors was found stuck and restarted.
pub struct SupervisorCollector {
    engine: rookery_actors::Engine,
    restarts: IntCounterVec,
}

impl SupervisorCollector {
    pub fn new(engine: rookery_actors::Engine) -> Self {
        let opts = Opts::new(
            "supervisor_restarts_total",
            "Times a supervisor was found stuck and restarted",
        )
        .namespace("rookery");
        Self {
            engine,
            // The name and label are constants, valid by construction.
            restarts: IntCounterVec::new(opts, &["supervisor"]).expect("valid counter"),
        }
    }
}

impl Collector for SupervisorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.restarts.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // The engine keeps the totals; the counter only carries them out.
        self.restarts.reset();
        for (name, n) in self.engine.supervisor_restarts() {
            self.restarts.with_label_values(&[name]).inc_by(n);
        }
        self.restarts.collect()
    }
}
