//! The contract suites of the cache and limiter ports, written once and run against the
//! in-process adapters always and the Redis adapters when `TEST_REDIS_URL` names a server
//! (`scripts/test.sh` starts one); plus Redis's own cases: replicas hammering one key, keys
//! isolated by prefix, and an outage of a server the test starts and kills itself.
#![expect(clippy::unwrap_used, reason = "test code: panics are failures")]

mod admission;
mod cache;
mod counters;
mod membership;
mod outage;
mod rate;
mod support;
