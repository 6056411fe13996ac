//! The connection to the server: its endpoint (TLS and client certificates when asked),
//! and the token and actor name attached to every call.

use std::path::PathBuf;

use anyhow::{Context, bail};
use churn_api::v1::registry_service_client::RegistryServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Where the server is and how to reach it: the global flags every command shares.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The server's address: http://HOST:PORT, https://HOST:PORT (TLS, checked against the
    /// platform's root certificates or --ca-cert), or HOST:PORT.
    #[arg(
        long,
        env = "CHURNSERVE_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub(crate) server: String,
    /// PEM file of the certificate authority that signed the server's certificate
    /// (implies TLS).
    #[arg(long, env = "CHURNSERVE_CA_CERT", global = true)]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM file of a client certificate, for servers that require one (mutual TLS).
    #[arg(
        long,
        env = "CHURNSERVE_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(
        long,
        env = "CHURNSERVE_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub(crate) client_key: Option<PathBuf>,
    /// Bearer token sent with every call (the server's write or read token).
    #[arg(long, env = "CHURNSERVE_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// A connection with the caller's token and name attached to every call.
pub(crate) struct Session {
    pub(crate) channel: Channel,
    token: Option<String>,
    actor: String,
}

impl Session {
    /// Connects to the server the command line names.
    pub(crate) async fn connect(cli: &Connection) -> anyhow::Result<Session> {
        let channel = endpoint(cli)?.connect().await.map_err(|error| {
            // tonic's transport error says only "transport error"; its sources say why.
            let mut reason = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            anyhow::anyhow!("cannot connect to {}: {reason}", cli.server)
        })?;
        let actor = format!(
            "churnctl:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
        );
        Ok(Session {
            channel,
            token: cli.token.clone(),
            actor,
        })
    }

    pub(crate) fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .context("the token is not a valid header value")?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Ok(actor) = self.actor.parse() {
            request.metadata_mut().insert("x-churn-actor", actor);
        }
        Ok(request)
    }

    pub(crate) fn registry(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
    }

    pub(crate) fn scoring(&self) -> ScoringServiceClient<Channel> {
        ScoringServiceClient::new(self.channel.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }
}

/// The server's endpoint: TLS for `https://` or with a CA given, with the client
/// certificate when one is given.
fn endpoint(cli: &Connection) -> anyhow::Result<Endpoint> {
    let tls = cli.server.starts_with("https://") || cli.ca_cert.is_some();
    let host = ["https://", "http://"]
        .iter()
        .find_map(|scheme| cli.server.strip_prefix(scheme))
        .unwrap_or(&cli.server);
    let scheme = if tls { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{host}")).with_context(|| {
        format!(
            "{:?} is not a server address such as http://127.0.0.1:50051",
            cli.server
        )
    })?;
    if !tls {
        if cli.client_cert.is_some() {
            bail!("--client-cert needs TLS: use an https:// address");
        }
        return Ok(endpoint);
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
    };
    let mut config = ClientTlsConfig::new();
    config = match &cli.ca_cert {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path, "CA certificate")?)),
        None => config.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&cli.client_cert, &cli.client_key) {
        config = config.identity(Identity::from_pem(
            read(cert, "client certificate")?,
            read(key, "client key")?,
        ));
    }
    endpoint
        .tls_config(config)
        .context("the TLS settings are not usable")
}

pub(crate) fn status(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}
