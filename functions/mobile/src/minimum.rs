//! The backend's minimum supported version per platform, in SSM Parameter Store.
//!
//! `raise-minimum` writes the plan's stable version only where the plan says a safe build is
//! live in that store (before, it would lock users out), only where the approver was shown
//! it, and never lowers a minimum someone raised further (a later fix's).

use aws_sdk_ssm::types::ParameterType;
use rollback_core::RollbackError;
use rollback_core::contract::mobile::{
    MinimumVersionResolution, MobileResolution, PlatformRaise, RaiseOutcome, RaiseOutput,
};
use rollback_core::plan::{MinimumVersionRef, MobileRef};

use crate::Clients;

/// The minimum version now, when the plan names one for the platform.
pub async fn read(
    clients: &Clients,
    minimum: Option<&MinimumVersionRef>,
) -> Result<Option<MinimumVersionResolution>, RollbackError> {
    let Some(minimum) = minimum else {
        return Ok(None);
    };
    let parameter = parameter_of(minimum)?;
    Ok(Some(MinimumVersionResolution {
        ssm_parameter: parameter.to_owned(),
        current: current(clients, parameter).await?,
        stable_version: minimum.stable_version.clone(),
        safe_build_live: minimum.safe_build_live,
    }))
}

fn parameter_of(minimum: &MinimumVersionRef) -> Result<&str, RollbackError> {
    // Plan validation refuses AppConfig for now; a plan that got here without it is a defect.
    minimum.ssm_parameter.as_deref().ok_or_else(|| {
        RollbackError::InvalidInput(
            "plan.mobile: a minimum_version without ssm_parameter (AppConfig is not supported \
             yet)"
                .into(),
        )
    })
}

/// The parameter's value; `None` when it does not exist.
async fn current(clients: &Clients, parameter: &str) -> Result<Option<String>, RollbackError> {
    match clients.ssm.get_parameter().name(parameter).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_owned)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(err) => Err(RollbackError::from_sdk("GetParameter", err)),
    }
}

/// `raise-minimum` for every platform with a minimum version.
pub async fn raise_minimum(
    clients: &Clients,
    mobile: &MobileRef,
    approved: &MobileResolution,
    drill: bool,
) -> Result<RaiseOutput, RollbackError> {
    let mut output = RaiseOutput {
        drill,
        android: None,
        ios: None,
        summary: String::new(),
    };
    if let Some(minimum) = mobile
        .android
        .as_ref()
        .and_then(|a| a.minimum_version.as_ref())
    {
        let shown = approved
            .android
            .as_ref()
            .and_then(|a| a.minimum_version.as_ref());
        output.android = Some(raise_one(clients, "Android", minimum, shown, drill).await?);
    }
    if let Some(minimum) = mobile.ios.as_ref().and_then(|i| i.minimum_version.as_ref()) {
        let shown = approved
            .ios
            .as_ref()
            .and_then(|i| i.minimum_version.as_ref());
        output.ios = Some(raise_one(clients, "iOS", minimum, shown, drill).await?);
    }
    Ok(output.summarized())
}

async fn raise_one(
    clients: &Clients,
    platform: &str,
    minimum: &MinimumVersionRef,
    shown: Option<&MinimumVersionResolution>,
    drill: bool,
) -> Result<PlatformRaise, RollbackError> {
    let parameter = parameter_of(minimum)?;
    let now = MinimumVersionResolution {
        ssm_parameter: parameter.to_owned(),
        current: current(clients, parameter).await?,
        stable_version: minimum.stable_version.clone(),
        safe_build_live: minimum.safe_build_live,
    };
    let stable = &minimum.stable_version;
    let result = |outcome, summary: String| PlatformRaise {
        outcome,
        ssm_parameter: parameter.to_owned(),
        previous: now.current.clone(),
        summary: format!("{platform}: {summary}"),
    };
    if shown.is_none() {
        return Ok(result(
            RaiseOutcome::NotRaised,
            "not raised: the approver was not shown this minimum version; resolve again and \
             approve"
                .to_owned(),
        ));
    }
    if !now.safe_build_live || now.already_at_or_above().is_some() {
        return Ok(result(no_change(&now), now.line()));
    }
    let from = now.current.as_deref().unwrap_or("unset");
    if drill {
        let line = format!("drill: {parameter} would go from {from} to {stable}");
        return Ok(result(RaiseOutcome::Rehearsed, line));
    }
    if let Err(err) = put(clients, parameter, stable, now.current.is_none()).await {
        // The answer may have been lost after SSM wrote it: look before reporting a failure.
        if current(clients, parameter).await.ok().flatten().as_deref() != Some(stable.as_str()) {
            return Err(err);
        }
        tracing::warn!(platform, parameter, error = %err, "PutParameter failed, but the value is written");
    }
    tracing::info!(platform, parameter, from, to = %stable, "minimum version raised");
    Ok(result(
        RaiseOutcome::Raised,
        format!("{parameter} raised from {from} to {stable}: users below must update"),
    ))
}

fn no_change(now: &MinimumVersionResolution) -> RaiseOutcome {
    if now.already_at_or_above().is_some() {
        RaiseOutcome::AlreadyRaised
    } else {
        RaiseOutcome::NotRaised
    }
}

/// Writes the parameter; a new one is a plain String (an existing one keeps its type).
async fn put(
    clients: &Clients,
    parameter: &str,
    value: &str,
    create: bool,
) -> Result<(), RollbackError> {
    let mut request = clients
        .ssm
        .put_parameter()
        .name(parameter)
        .value(value)
        .overwrite(true);
    if create {
        request = request.r#type(ParameterType::String);
    }
    request
        .send()
        .await
        .map(drop)
        .map_err(|e| RollbackError::from_sdk("PutParameter", e))
}
