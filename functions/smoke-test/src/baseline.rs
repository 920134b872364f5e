//! The baselines SQL probes compare with (`compare.baseline: "pre-deploy-snapshot"`): read
//! once per database and smoke run from the snapshot tags `rollback_snapshot::baseline`
//! writes. A baseline that cannot be found fails its probe with the reason; it is never an
//! error of the run.

use std::collections::HashMap;

use rollback_core::plan::Plan;

pub(crate) use rollback_snapshot::baseline::Baseline;

/// For each probe (by index in `plan.smoke.sql`) that compares with a baseline: the baseline,
/// or why there is none.
pub(crate) async fn load_all(
    rds: &aws_sdk_rds::Client,
    plan: &Plan,
    execution: Option<&str>,
    release: Option<&str>,
) -> HashMap<usize, Result<Baseline, String>> {
    let mut sources = HashMap::new();
    let mut out = HashMap::new();
    for (i, probe) in plan.smoke.sql.iter().enumerate() {
        if !probe.records_baseline() {
            continue;
        }
        let Some(db) = plan.databases.iter().find(|d| d.id == probe.database) else {
            // Validation refuses this; a result all the same.
            out.insert(i, Err(format!("{} is not a plan database", probe.database)));
            continue;
        };
        if !sources.contains_key(&db.id) {
            let source = rollback_snapshot::baseline::source(
                rds,
                plan,
                db,
                execution.unwrap_or_default(),
                release,
            )
            .await;
            sources.insert(db.id.clone(), source);
        }
        let baseline = match &sources[&db.id] {
            Ok(source) => source.baseline(&probe.name),
            Err(why) => Err(why.clone()),
        };
        out.insert(i, baseline);
    }
    out
}
