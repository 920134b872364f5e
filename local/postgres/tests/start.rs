use std::io::Read;
use std::net::TcpStream;

use rollback_postgres::PostgresServer;

#[test]
fn starts_listens_on_loopback_and_cleans_up() {
    let server = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    assert!(server.addr().ip().is_loopback());
    assert_eq!(server.rds_secret()["port"], server.port());
    assert_eq!(server.password().len(), 24);
    // The server speaks: an SSLRequest is answered with a single 'S' or 'N'.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    use std::io::Write;
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).unwrap();
    assert!(matches!(answer[0], b'S' | b'N'), "{answer:?}");
    let addr = server.addr();
    drop(stream);
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "server still listening after drop"
    );
}

#[test]
fn outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the spawning *thread* exits; the keeper thread prevents it.
    let server = std::thread::spawn(|| PostgresServer::start().unwrap_or_else(|e| panic!("{e}")))
        .join()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        TcpStream::connect(server.addr()).is_ok(),
        "server died with its starting thread; log:\n{}",
        server.log()
    );
}
