//! `halt`: the approved Play release halted, the approved App Store phased release paused.
//!
//! Both platforms' credentials are read before either store is asked. Google Play goes
//! first; when the App Store then fails, the error says what Google Play already did (a retry
//! finds it done and goes on).

use rollback_core::RollbackError;
use rollback_core::contract::mobile::{HaltOutput, MobileResolution};
use rollback_core::plan::MobileRef;

use crate::credentials::Credentials;
use crate::{Clients, appstore, play};

/// `halt` on every platform of the plan, against the approved resolution.
pub async fn halt(
    clients: &Clients,
    mobile: &MobileRef,
    approved: &MobileResolution,
    drill: bool,
) -> Result<HaltOutput, RollbackError> {
    let credentials = Credentials::load(clients, mobile).await?;
    let mut output = HaltOutput {
        drill,
        android: None,
        ios: None,
        summary: String::new(),
    };
    if let (Some(android), Some(key)) = (&mobile.android, &credentials.google) {
        let shown = approved
            .android
            .as_ref()
            .ok_or_else(|| not_shown("android"))?;
        let done = play::halt(clients, android, key, shown, drill).await?;
        tracing::info!(package = %android.package_name, outcome = ?done.outcome, "play");
        output.android = Some(done);
    }
    if let (Some(ios), Some(key)) = (&mobile.ios, &credentials.apple) {
        let shown = approved.ios.as_ref().ok_or_else(|| not_shown("ios"));
        let done = match shown {
            Ok(shown) => appstore::halt(clients, ios, key, shown, drill).await,
            Err(err) => Err(err),
        };
        let done = done.map_err(|err| after(&output, err))?;
        tracing::info!(app = %ios.app_id, outcome = ?done.outcome, "app store");
        output.ios = Some(done);
    }
    Ok(output.summarized())
}

/// The plan names a platform the approved resolution lacks: the approver did not see it.
fn not_shown(platform: &str) -> RollbackError {
    RollbackError::PlanDrifted(format!(
        "the plan names mobile.{platform}, but the approved resolution has no {platform} part: \
         resolve again and approve"
    ))
}

/// `err`, its message saying first what was already done on the other platform.
fn after(output: &HaltOutput, err: RollbackError) -> RollbackError {
    let Some(done) = &output.android else {
        return err;
    };
    let note = |m: String| format!("{m} (already done: {})", done.summary);
    match err {
        RollbackError::StoreRefused(m) => RollbackError::StoreRefused(note(m)),
        RollbackError::StoreCredentials(m) => RollbackError::StoreCredentials(note(m)),
        RollbackError::PlanDrifted(m) => RollbackError::PlanDrifted(note(m)),
        RollbackError::Internal(m) => RollbackError::Internal(note(m)),
        RollbackError::Transient { operation, message } => RollbackError::Transient {
            operation,
            message: note(message),
        },
        RollbackError::Throttled { operation, message } => RollbackError::Throttled {
            operation,
            message: note(message),
        },
        other => other,
    }
}
