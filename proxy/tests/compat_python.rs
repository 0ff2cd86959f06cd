//! The real Python lock libraries from PyPI, unchanged, against a gateway
//! over three masters: redis-py's `Lock` (RESP2 and RESP3), pottery's
//! `Redlock` and python-redis-lock. The suites live in `compat/python/`;
//! `.ci/run` installs `compat/python/requirements.txt` into a venv and
//! points `LOCKGATE_PYTHON` at it.

mod support;

use std::process::Command;

use support::{run_client_suite, toolchain_available};

fn python() -> Option<String> {
    let py = std::env::var("LOCKGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    toolchain_available(
        "the Python lock libraries",
        Command::new(&py).args(["-c", "import redis, pottery, redis_lock"]),
        "pip install -r compat/python/requirements.txt",
    )
    .then_some(py)
}

fn suite(name: &str) -> String {
    format!("{}/../compat/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn run(file: &str, protocol: &str) {
    let Some(py) = python() else { return };
    let passed = run_client_suite(&py, &[&suite(file)], &[protocol]).await;
    eprintln!("{file} RESP{protocol}: {passed} checks passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_lock_over_resp2() {
    run("redis_py_lock.py", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_lock_over_resp3() {
    run("redis_py_lock.py", "3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pottery_redlock() {
    run("pottery_redlock.py", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pottery_redlock_over_resp3() {
    run("pottery_redlock.py", "3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_redis_lock() {
    run("python_redis_lock.py", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_redis_lock_over_resp3() {
    run("python_redis_lock.py", "3").await;
}
