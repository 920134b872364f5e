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

#[test]
fn serves_tls_only_with_a_certificate_for_the_given_names() {
    let server = PostgresServer::start_tls(rollback_postgres::LOOPBACK_NAMES)
        .unwrap_or_else(|e| panic!("{e}"));
    let ca = server.ca_pem().expect("a TLS server has a CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let secret = server.rds_secret();
    assert_eq!(secret["sslrootcert"], ca);
    assert!(secret.get("sslmode").is_none(), "{secret}");
    // TLS is offered ('S'), and psql (over TLS) runs statements.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    use std::io::Write;
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(answer[0], b'S');
    let out = server
        .psql("create table t (n int); insert into t values (7); select n from t")
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(out.trim(), "7");
    // Without TLS: the secret says so (rollback-sql-probe's tests check that a TLS server
    // refuses plaintext).
    let plain = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain.rds_secret()["sslmode"], "disable");
    assert!(plain.ca_pem().is_none());
    assert_eq!(plain.psql("select 1").unwrap().trim(), "1");
}
