//! Fixed loopback ports for the cluster's processes and servers, which must come back on the
//! same address after a restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The ports this test process has handed out, each held by a listener of ours until
/// [`release`] (just before the process or server that listens there starts), and never
/// handed out twice: two draws cannot meet, and nothing can bind a port between its draw and
/// its owner's start.
static PORTS: parking_lot::Mutex<BTreeMap<u16, Option<std::net::TcpListener>>> =
    parking_lot::Mutex::new(BTreeMap::new());

/// A port nobody listens on now, for a process that must come back on it. It is drawn below
/// Linux's ephemeral range (32768–60999), which the kernel uses for port-0 listeners and
/// outgoing connections, and stays reserved until [`release`].
pub(crate) fn free_addr() -> SocketAddr {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut ports = PORTS.lock();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if ports.contains_key(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            let addr = listener.local_addr().unwrap();
            ports.insert(port, Some(listener));
            return addr;
        }
    }
    panic!("no free port in 20000..32000")
}

/// Frees a port from [`free_addr`] for the process about to listen on it (again: a no-op).
pub(crate) fn release(addr: SocketAddr) {
    if let Some(held) = PORTS.lock().get_mut(&addr.port()) {
        held.take();
    }
}
