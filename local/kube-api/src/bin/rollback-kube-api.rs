//! Serve the local Kubernetes API standalone, e.g. to poke at it with kubectl:
//!
//! ```text
//! rollback-kube-api --seed-mint --kubeconfig /tmp/kubeconfig
//! kubectl --kubeconfig /tmp/kubeconfig -n mint rollout history deploy/backend-deployment
//! ```

use std::path::PathBuf;

use clap::Parser;
use rollback_kube_api::{DEFAULT_TOKEN, LocalKube, MintImages, Options};

#[derive(Parser, Debug)]
#[command(about = "A local Kubernetes API (Deployments, ReplicaSets, scale) for rollback drills")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve plain HTTP instead of HTTPS with a generated CA.
    #[arg(long)]
    http: bool,
    /// Static bearer token to accept (EKS-shaped tokens are accepted too).
    #[arg(long, default_value = DEFAULT_TOKEN)]
    token: String,
    /// Where to write the kubeconfig (default: a file in the temp directory).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Seed the Mint Replica demo (namespace mint, two revisions per deployment).
    #[arg(long)]
    seed_mint: bool,
    #[arg(long, default_value = "mint-replica-backend:stable")]
    backend_stable: String,
    #[arg(long, default_value = "mint-replica-backend:bad")]
    backend_bad: String,
    #[arg(long, default_value = "mint-replica-frontend:stable")]
    frontend_stable: String,
    #[arg(long, default_value = "mint-replica-frontend:bad")]
    frontend_bad: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let options = Options {
        tls: !args.http,
        static_tokens: vec![args.token.clone()],
        port: args.port,
        ..Options::default()
    };
    let kube = LocalKube::start(options).await?;
    if args.seed_mint {
        kube.seed_mint_demo(&MintImages {
            backend_stable: args.backend_stable,
            backend_bad: args.backend_bad,
            frontend_stable: args.frontend_stable,
            frontend_bad: args.frontend_bad,
        })?;
    }
    let path = args.kubeconfig.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "rollback-kube-api-{}.kubeconfig",
            kube.addr().port()
        ))
    });
    kube.write_kubeconfig(&path, &args.token)?;
    println!("listening on {}", kube.url());
    println!("kubeconfig: {}", path.display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
