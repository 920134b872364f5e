//! The harness starts a real moto, answers on loopback, and leaves nothing running.

use std::net::TcpStream;
use std::time::Duration;

use rollback_moto::MotoServer;

#[test]
fn starts_on_a_free_loopback_port_and_stops_on_drop() {
    let a = MotoServer::start().expect("moto starts");
    let b = MotoServer::start().expect("a second moto starts");
    assert_ne!(a.addr(), b.addr(), "each server gets its own port");
    assert!(a.addr().ip().is_loopback());
    a.reset().expect("moto's API answers");
    a.enable_state_machine_execution()
        .expect("config endpoint answers");
    let addr = a.addr();
    drop(a);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "the server is gone after drop"
    );
    assert!(TcpStream::connect_timeout(&b.addr(), Duration::from_millis(500)).is_ok());
}

/// The shared server outlives the test thread that first asked for it.
#[test]
fn shared_server_survives_its_first_test_thread() {
    let addr = std::thread::spawn(|| {
        let server = MotoServer::shared();
        server.reset().expect("answers");
        server.addr()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok(),
        "moto died with the thread that started it"
    );
    MotoServer::shared().reset().expect("still answers");
}
