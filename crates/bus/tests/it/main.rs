//! The integration tests of the bus crate, one binary: the contract suites of the ports
//! (`jobs`, `events`, `live`), run against the SQL adapters on the backend under test (SQLite by
//! default, PostgreSQL with `TEST_BACKEND=postgres`), and reusable by other adapters' modules:
//! each suite is a list of public cases over a [`Fixture`], and a `*_contract` function that
//! runs them all against fixtures from a [`Make`].
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: panics are failures, and a suite names the case it runs"
)]

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;

mod audit;
mod events;
mod jobs;
mod jobs_admin;
mod live;
#[cfg(feature = "nats")]
mod nats;
mod workers;

/// What one suite case runs against: the adapter, and whatever must live as long as it does
/// (a temporary database, a server; `Box::new(())` when nothing).
pub struct Fixture<T: ?Sized> {
    pub port: Arc<T>,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Makes a fresh fixture for each case.
pub type Make<T> = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Fixture<T>>> + Send + Sync>;

/// One case of a suite.
pub type Case<T> = Box<dyn Fn(Fixture<T>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A migrated database of the backend under test, and its guard.
pub async fn test_db() -> anyhow::Result<(confab_store::Db, confab_testkit::TestDb)> {
    let test_db = confab_testkit::TestDb::new().await?;
    let db = confab_store::Db::connect(
        &test_db.url,
        &confab_core::config::DatabaseConfig::default(),
    )
    .await?;
    confab_bus::migrations().run(&db).await?;
    Ok((db, test_db))
}

/// Runs every case of a suite, each on a fresh fixture, naming the case that fails.
pub async fn run_cases<T: ?Sized>(suite: &str, make: Make<T>, cases: Vec<(&'static str, Case<T>)>) {
    for (name, case) in cases {
        let fixture = make()
            .await
            .unwrap_or_else(|e| panic!("{suite}::{name}: no fixture: {e:#}"));
        eprintln!("{suite}::{name}");
        case(fixture).await;
    }
}

/// Declares a suite: `$list()` returns its cases by name, and module `$tests` runs each one
/// as its own test against the fixture `$fixture()`.
macro_rules! suite {
    ($port:ty, $list:ident, $tests:ident, $fixture:path; $($case:ident),* $(,)?) => {
        /// Every case of this suite, by name.
        // Some suites' fixtures are used by other adapters' modules and some are not: the
        // exception differs from one expansion to the next, so it cannot be an expectation.
        #[expect(clippy::allow_attributes, reason = "dead in some expansions only")]
        #[allow(dead_code)]
        pub fn $list() -> Vec<(&'static str, $crate::Case<$port>)> {
            vec![$((
                stringify!($case),
                Box::new(|f| Box::pin($case(f)) as futures::future::BoxFuture<'static, ()>)
                    as $crate::Case<$port>,
            )),*]
        }

        mod $tests {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($fixture().await.unwrap()).await;
                }
            )*
        }
    };
}
pub(crate) use suite;
