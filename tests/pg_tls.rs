//! TLS to PostgreSQL: the server's certificate is verified against the
//! system's roots (read at the first handshake, not when svc starts), so a
//! certificate no root vouches for is refused, and one that `SSL_CERT_FILE`
//! makes trusted connects. A real PostgreSQL with `ssl = on` and a
//! certificate for 127.0.0.1 signed by a CA of the test's own.

mod common;

use std::os::unix::fs::MetadataExt;

use common::pg::Postgres;

#[test]
fn tls_to_postgresql_verifies_the_servers_certificate() {
    let pg = Postgres::start();
    let dir = pg.dir();
    // A CA, and the server's certificate for 127.0.0.1 signed by it.
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "svc pg_tls test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    let (cert_file, key_file, ca_file) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("ca.pem"),
    );
    std::fs::write(&cert_file, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // The server reads them as the user it runs as (the directory's owner),
    // and refuses a key others may read.
    let owner = std::fs::metadata(dir).unwrap();
    for file in [&cert_file, &key_file] {
        std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    pg.psql(
        "postgres",
        &format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}';\n\
             ALTER SYSTEM SET ssl_key_file = '{}';\n\
             ALTER SYSTEM SET ssl = on;\n\
             SELECT pg_reload_conf();\n",
            cert_file.display(),
            key_file.display()
        ),
    );
    assert!(
        common::eventually(10, || pg.psql("postgres", "SHOW ssl").trim() == "on"),
        "the server did not turn TLS on: {}",
        pg.log()
    );
    let url = format!("{}?sslmode=require", pg.url());
    let status = |trusted: Option<&std::path::Path>| {
        let mut command = common::svc()
            .args(["backend", "status"])
            .env("SVC_BACKEND", &url);
        if let Some(ca) = trusted {
            command = command.env("SSL_CERT_FILE", ca);
        }
        command.run()
    };
    // No root vouches for the server: refused, and nothing was read.
    let refused = status(None);
    assert_ne!(refused.status, 0, "{}", refused.all_output());
    assert!(
        refused.all_output().to_lowercase().contains("certificate"),
        "{}",
        refused.all_output()
    );
    // The test's CA as the system's roots: the same server is trusted.
    let trusted = status(Some(&ca_file));
    assert_eq!(trusted.status, 0, "{}", trusted.all_output());
    assert!(
        trusted.stdout.contains("schema version"),
        "{}",
        trusted.stdout
    );
    // And a certificate for another name is refused even so.
    let elsewhere = common::svc()
        .args(["backend", "status"])
        .env(
            "SVC_BACKEND",
            format!("{}?sslmode=require", pg.url()).replace("127.0.0.1", "localhost"),
        )
        .env("SSL_CERT_FILE", &ca_file)
        .run();
    assert_ne!(elsewhere.status, 0, "{}", elsewhere.all_output());
}
