//! `resolve` and `status`: what is live in each store, and the minimum versions. Changes
//! nothing (a Play edit is opened to read the track, and deleted).

use rollback_core::RollbackError;
use rollback_core::contract::mobile::MobileResolution;
use rollback_core::plan::MobileRef;

use crate::credentials::Credentials;
use crate::{Clients, appstore, minimum, play};

/// Every platform of the plan: credentials first (a missing or malformed secret stops here,
/// before any store is asked), then the stores, then the minimum versions.
pub async fn resolve(
    clients: &Clients,
    mobile: &MobileRef,
) -> Result<MobileResolution, RollbackError> {
    let credentials = Credentials::load(clients, mobile).await?;
    let mut resolution = MobileResolution::default();
    if let (Some(android), Some(key)) = (&mobile.android, &credentials.google) {
        let mut play = play::read(clients, android, key).await?;
        play.minimum_version = minimum::read(clients, android.minimum_version.as_ref()).await?;
        tracing::info!(package = %android.package_name, headline = %play.headline(), "resolved");
        resolution.android = Some(play);
    }
    if let (Some(ios), Some(key)) = (&mobile.ios, &credentials.apple) {
        let mut store = appstore::read(clients, ios, key).await?;
        store.minimum_version = minimum::read(clients, ios.minimum_version.as_ref()).await?;
        tracing::info!(app = %ios.app_id, headline = %store.headline(), "resolved");
        resolution.ios = Some(store);
    }
    Ok(resolution)
}
