//! TLS through the real server, with a certificate authority made at test time: scoring
//! over TLS, a plaintext client refused, and with a client CA configured, a client without
//! a certificate refused while one with a certificate from that CA is served.

use churn_api::v1 as pb;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use tests::{TestServer, fixture, pki};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

async fn score_over(endpoint: Endpoint) -> Result<f64, String> {
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let customer = fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto();
    ScoringServiceClient::new(channel)
        .score(pb::ScoreRequest {
            model: None,
            customer: Some(customer),
            top_reasons: 0,
        })
        .await
        .map(|r| {
            r.into_inner()
                .prediction
                .expect("prediction")
                .churn_probability
        })
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temporary directory");
    let files = pki.write_to(dir.path());
    let (cert, key, ca) = (files.server_cert, files.server_key, files.ca);
    let trusting = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca))
            .domain_name("localhost")
    };
    let expected = fixture("models/fixtures/telco-logreg.json", "customers")[0].churn_probability;

    let server = TestServer::start_with(|config| {
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
    })
    .await;
    let url = format!("https://localhost:{}", server.address.port());
    let tls = Endpoint::from_shared(url.clone())
        .expect("url")
        .tls_config(trusting())
        .expect("tls");
    let probability = score_over(tls).await.expect("scores over TLS");
    assert!((probability - expected).abs() <= 1e-9);
    let plaintext = Endpoint::from_shared(format!("http://{}", server.address)).expect("url");
    assert!(score_over(plaintext).await.is_err(), "plaintext is refused");
    server.stop().await.expect("stops");

    let mutual = TestServer::start_with(|config| {
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
        config.tls_client_ca = Some(ca.clone());
    })
    .await;
    let url = format!("https://localhost:{}", mutual.address.port());
    let anonymous = Endpoint::from_shared(url.clone())
        .expect("url")
        .tls_config(trusting())
        .expect("tls");
    assert!(
        score_over(anonymous).await.is_err(),
        "a client without a certificate is refused"
    );
    let identified = Endpoint::from_shared(url)
        .expect("url")
        .tls_config(trusting().identity(Identity::from_pem(&pki.client.0, &pki.client.1)))
        .expect("tls");
    let probability = score_over(identified)
        .await
        .expect("a client with a certificate from the CA");
    assert!((probability - expected).abs() <= 1e-9);
}
