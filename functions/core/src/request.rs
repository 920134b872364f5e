//! The request that starts an execution: an EventBridge alarm event or a manual console start.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan_store::PlanSource;
use crate::validation::{self, ValidationErrors};

/// Longest `reason` of a request (and an alarm's state reason, which is cut to it).
pub const MAX_REASON_CHARS: usize = 1000;

/// The normalized request every function receives as `request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// What started the execution.
    pub trigger: Trigger,
    /// Why, in one line (`alarm X went OK → ALARM`, or the person's reason).
    pub reason: String,
    /// What the rollback may change (default `app`).
    #[serde(default)]
    pub scope: Scope,
    /// Restore databases to their state before this instant (default: the bad release's rollout time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<DateTime<Utc>>,
    /// The release being rolled back, as recorded in pre-deploy snapshot tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Live, or a drill that changes nothing.
    #[serde(default)]
    pub mode: Mode,
    /// The plan this execution runs with (parameter and version), set by `validate` when it
    /// read the plan from SSM; never taken from the execution input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_source: Option<PlanSource>,
}

impl Default for RollbackRequest {
    fn default() -> Self {
        RollbackRequest {
            trigger: Trigger::Manual { requested_by: None },
            reason: "manual rollback".to_owned(),
            scope: Scope::APP,
            cutoff: None,
            release: None,
            mode: Mode::Live,
            plan_source: None,
        }
    }
}

/// What started an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Trigger {
    /// A person, from the console or `rollbackctl`.
    Manual {
        /// Who, when they say (an email address or name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_by: Option<String>,
    },
    /// A CloudWatch alarm's transition, delivered by EventBridge.
    Alarm(AlarmTrigger),
}

/// The alarm transition that started an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmTrigger {
    /// The alarm's name.
    pub alarm_name: String,
    /// The alarm's ARN, when the event carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_arn: Option<String>,
    /// The state it went into.
    pub state: AlarmState,
    /// The state it came from.
    pub previous_state: AlarmState,
    /// When the alarm entered `state`.
    pub state_changed_at: DateTime<Utc>,
    /// When the alarm entered `previous_state`, if the event says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state_changed_at: Option<DateTime<Utc>>,
    /// CloudWatch's reason for the transition (cut to [`MAX_REASON_CHARS`]).
    #[serde(default)]
    pub state_reason: String,
    /// EventBridge event id (for tracing duplicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// `OK`.
    Ok,
    /// `ALARM`.
    Alarm,
    /// `INSUFFICIENT_DATA`.
    InsufficientData,
}

/// What an approval (or a request) covers. Images and deployments always; databases,
/// infrastructure and the mobile releases only when named, because they are the parts that
/// lose data, destroy things or reach users' phones. `destroys` lets the infrastructure apply
/// destroy or replace resources of the plan's protected types
/// (`infrastructure.protected_types`); without it such a plan is refused.
///
/// Written as `app`, then `+database`, `+infrastructure`, `+destroys`, `+mobile` in that
/// order (`app+database+mobile`); the definition's Choice states match `app+database*`,
/// `*infrastructure*` and `*mobile` on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Databases restored from the pre-deploy snapshot.
    pub database: bool,
    /// Terraform applied at the stable commit.
    pub infrastructure: bool,
    /// With `infrastructure`: destroys of protected resource types allowed.
    pub destroys: bool,
    /// The bad mobile release halted in the stores, the minimum version raised.
    pub mobile: bool,
}

/// The parts after `app`, in the order the string form writes them.
const SCOPE_PARTS: [&str; 4] = ["database", "infrastructure", "destroys", "mobile"];

impl Scope {
    /// Images and deployments only.
    pub const APP: Scope = Scope {
        database: false,
        infrastructure: false,
        destroys: false,
        mobile: false,
    };
    /// Images, deployments, and databases.
    pub const APP_AND_DATABASE: Scope = Scope::APP.and_database();

    /// This scope, with databases.
    pub const fn and_database(self) -> Scope {
        Scope {
            database: true,
            ..self
        }
    }

    /// This scope, with infrastructure (and destroys of protected types when `destroys`).
    pub const fn and_infrastructure(self, destroys: bool) -> Scope {
        Scope {
            infrastructure: true,
            destroys,
            ..self
        }
    }

    /// This scope, with the mobile releases.
    pub const fn and_mobile(self) -> Scope {
        Scope {
            mobile: true,
            ..self
        }
    }

    fn flags(self) -> [bool; 4] {
        [
            self.database,
            self.infrastructure,
            self.destroys,
            self.mobile,
        ]
    }

    /// The name the JSON uses (`app`, `app+database`, `app+infrastructure+destroys+mobile`).
    pub fn as_str(self) -> String {
        let mut name = String::from("app");
        for (part, on) in SCOPE_PARTS.iter().zip(self.flags()) {
            if on {
                name.push('+');
                name.push_str(part);
            }
        }
        name
    }

    /// Reads `app[+database][+infrastructure][+destroys][+mobile]`, parts in any order, each
    /// at most once; `destroys` only with `infrastructure`.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let forms = "write app, then any of +database, +infrastructure, +destroys (with \
                     infrastructure), +mobile: e.g. \"app+database\"";
        let mut parts = text.split('+');
        if parts.next() != Some("app") {
            return Err(format!(
                "scope {text:?} does not start with \"app\": {forms}"
            ));
        }
        let mut flags = [false; 4];
        for part in parts {
            let Some(index) = SCOPE_PARTS.iter().position(|p| *p == part) else {
                return Err(format!("scope {text:?}: unknown part {part:?}: {forms}"));
            };
            if std::mem::replace(&mut flags[index], true) {
                return Err(format!("scope {text:?} names {part:?} twice: {forms}"));
            }
        }
        let [database, infrastructure, destroys, mobile] = flags;
        if destroys && !infrastructure {
            return Err(format!(
                "scope {text:?}: +destroys allows destroys by the infrastructure apply, so it \
                 needs +infrastructure too"
            ));
        }
        Ok(Scope {
            database,
            infrastructure,
            destroys,
            mobile,
        })
    }

    /// For people: `app only`, `app + database + infrastructure (destroys allowed) + mobile`.
    pub fn label(self) -> String {
        if self == Scope::APP {
            return "app only".to_owned();
        }
        let mut label = String::from("app");
        if self.database {
            label.push_str(" + database");
        }
        if self.infrastructure {
            label.push_str(" + infrastructure");
        }
        if self.destroys {
            label.push_str(" (destroys allowed)");
        }
        if self.mobile {
            label.push_str(" + mobile");
        }
        label
    }

    /// Whether databases are restored.
    pub fn includes_database(self) -> bool {
        self.database
    }

    /// Whether Terraform is applied.
    pub fn includes_infrastructure(self) -> bool {
        self.infrastructure
    }

    /// Whether the infrastructure apply may destroy protected resource types.
    pub fn allows_destroys(self) -> bool {
        self.infrastructure && self.destroys
    }

    /// Whether the mobile releases are halted.
    pub fn includes_mobile(self) -> bool {
        self.mobile
    }

    /// What of `needed` this scope leaves out, for a refusal: `databases`, `infrastructure`,
    /// `destroys of protected resources`, `mobile releases`.
    pub fn uncovered(self, needed: Scope) -> Option<&'static str> {
        [
            (needed.database && !self.database, "databases"),
            (
                needed.infrastructure && !self.infrastructure,
                "infrastructure",
            ),
            (
                needed.allows_destroys() && !self.allows_destroys(),
                "destroys of protected resources",
            ),
            (needed.mobile && !self.mobile, "mobile releases"),
        ]
        .into_iter()
        .find_map(|(missing, what)| missing.then_some(what))
    }

    /// Every scope there is (destroys only with infrastructure), narrowest first.
    pub fn all() -> impl Iterator<Item = Scope> {
        (0u8..16)
            .map(|bits| Scope {
                database: bits & 1 != 0,
                infrastructure: bits & 2 != 0,
                destroys: bits & 4 != 0,
                mobile: bits & 8 != 0,
            })
            .filter(|scope| !scope.destroys || scope.infrastructure)
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether an execution changes things.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The real rollback (the default).
    #[default]
    Live,
    /// Every step in its non-destructive form.
    Drill,
}

impl Mode {
    /// Whether this is a drill.
    pub fn is_drill(self) -> bool {
        matches!(self, Mode::Drill)
    }
}

/// A manual start from the console: `{}` means "roll back the app now".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualStart {
    /// Whose plan to run (checked by `validate` against the stack's plans).
    /// Read and checked by [`StartInput::parse`].
    #[serde(default)]
    #[allow(dead_code)]
    service: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    cutoff: Option<DateTime<Utc>>,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    requested_by: Option<String>,
}

/// The parts of EventBridge's "CloudWatch Alarm State Change" event we read.
#[derive(Debug, Deserialize)]
struct AlarmEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    detail: AlarmDetail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmStateDetail,
    previous_state: AlarmStateDetail,
}

#[derive(Debug, Deserialize)]
struct AlarmStateDetail {
    value: AlarmState,
    #[serde(default)]
    reason: String,
    timestamp: String,
}

/// The `detail-type` of the EventBridge events alarms send.
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// An execution's input, read: the service it names (if any) and the request.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInput {
    /// `service` of the input (`{"service": "mint-replica", …}`, or the EventBridge rule's
    /// `{"service": …, "event": …}`): whose plan to run. `None`: the stack's only plan.
    pub service: Option<String>,
    /// The request it starts.
    pub request: RollbackRequest,
}

impl StartInput {
    /// Reads an execution's input: a manual start document (`{}`, `{"service", "reason",
    /// "scope", …}`), an EventBridge alarm event, or the stack's EventBridge rule's
    /// [`eventbridge_input`] (`{"service": …, "event": <the alarm event>}`).
    pub fn parse(input: Value) -> Result<StartInput, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let service = match input.get("service") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                crate::plan::rules::SERVICE.check(&mut errors, "service", s);
                Some(s.clone())
            }
            Some(_) => {
                errors.push(
                    "service",
                    "give the service whose plan to run as a string, e.g. \"mint-replica\"",
                );
                None
            }
        };
        let wrapped = input.get("event").filter(|event| {
            event.is_object()
                && input
                    .as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "event" || k == "service"))
        });
        let request = if let Some(event) = wrapped {
            RollbackRequest::from_alarm_event(event.clone()).map_err(|e| e.prefixed("event"))
        } else if input.get("detail-type").is_some() || input.get("source").is_some() {
            RollbackRequest::from_alarm_event(input)
        } else {
            RollbackRequest::from_manual(input)
        };
        let request = match request {
            Ok(request) => request,
            Err(more) => {
                errors.0.extend(more.0);
                return Err(errors);
            }
        };
        if let Err(more) = request.validate() {
            errors.0.extend(more.0);
        }
        errors.into_result(StartInput { service, request })
    }
}

/// What the stack's EventBridge rule starts an execution with: its input transformer's
/// `{"service": "<ServiceName>", "event": <aws.events.event.json>}` (infra/template.yaml).
pub fn eventbridge_input(service: &str, event: Value) -> Value {
    serde_json::json!({"service": service, "event": event})
}

impl RollbackRequest {
    /// Reads an execution's input (see [`StartInput::parse`]); the service it names is dropped.
    pub fn from_start_input(input: Value) -> Result<RollbackRequest, ValidationErrors> {
        StartInput::parse(input).map(|start| start.request)
    }

    fn from_alarm_event(input: Value) -> Result<RollbackRequest, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let source = input
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let detail_type = input
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if source != "aws.cloudwatch" {
            errors.push(
                "source",
                format!(
                    "{:?} is not \"aws.cloudwatch\"; only CloudWatch alarm events start a rollback",
                    validation::truncate(source, 80)
                ),
            );
        }
        if detail_type != ALARM_DETAIL_TYPE {
            errors.push(
                "detail-type",
                format!(
                    "{:?} is not {ALARM_DETAIL_TYPE:?}",
                    validation::truncate(detail_type, 80)
                ),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let event: AlarmEvent = validation::from_value(input)?;
        let state_changed_at = parse_alarm_time(
            &mut errors,
            "detail.state.timestamp",
            &event.detail.state.timestamp,
        );
        let previous_changed_at = parse_alarm_time(
            &mut errors,
            "detail.previousState.timestamp",
            &event.detail.previous_state.timestamp,
        );
        let (Some(state_changed_at), true) = (state_changed_at, errors.is_empty()) else {
            return Err(errors);
        };
        // CloudWatch allows 1-255 characters; their content is neutralised where it is shown.
        let name_chars = event.detail.alarm_name.chars().count();
        if !(1..=255).contains(&name_chars) {
            errors.push(
                "detail.alarmName",
                format!("has {name_chars} characters; CloudWatch alarm names have 1-255"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let reason = format!(
            "alarm {} went {} → {}",
            event.detail.alarm_name,
            event.detail.previous_state.value.as_str(),
            event.detail.state.value.as_str()
        );
        Ok(RollbackRequest {
            trigger: Trigger::Alarm(AlarmTrigger {
                alarm_name: event.detail.alarm_name,
                alarm_arn: event.resources.into_iter().next(),
                state: event.detail.state.value,
                previous_state: event.detail.previous_state.value,
                state_changed_at,
                previous_state_changed_at: previous_changed_at,
                state_reason: validation::truncate(&event.detail.state.reason, MAX_REASON_CHARS),
                event_id: event.id,
            }),
            reason,
            ..RollbackRequest::default()
        })
    }

    fn from_manual(input: Value) -> Result<RollbackRequest, ValidationErrors> {
        let input = if input.is_null() {
            Value::Object(Default::default())
        } else {
            input
        };
        let start: ManualStart = validation::from_value(input)?;
        let defaults = RollbackRequest::default();
        Ok(RollbackRequest {
            trigger: Trigger::Manual {
                requested_by: start.requested_by,
            },
            reason: start.reason.unwrap_or(defaults.reason),
            scope: start.scope.unwrap_or_default(),
            cutoff: start.cutoff,
            release: start.release,
            mode: start.mode.unwrap_or_default(),
            plan_source: None,
        })
    }

    /// Checks the fields serde cannot: a reason of 1-[`MAX_REASON_CHARS`] characters, a valid
    /// release name, a cutoff not in the future, a `requested_by` of at most 200 characters.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.reason.trim().is_empty() {
            errors.push("reason", "give a short reason, or leave the field out");
        }
        if self.reason.chars().count() > MAX_REASON_CHARS {
            errors.push("reason", format!("at most {MAX_REASON_CHARS} characters"));
        }
        if let Some(release) = &self.release
            && !crate::plan::rules::IMAGE_TAG.is_valid(release)
        {
            errors.push(
                "release",
                "release names have 1-128 letters, digits, _ . - (as image tags do)",
            );
        }
        if let Some(cutoff) = self.cutoff
            && cutoff > Utc::now() + chrono::Duration::minutes(5)
        {
            errors.push(
                "cutoff",
                "is in the future; give the bad release's rollout time (RFC 3339)",
            );
        }
        if let Trigger::Manual {
            requested_by: Some(by),
        } = &self.trigger
            && by.chars().count() > 200
        {
            errors.push("requested_by", "at most 200 characters");
        }
        errors.into_result(())
    }

    /// Applies the plan's trigger policy: an alarm-started request gets the plan's alarm scope.
    pub fn with_trigger_policy(mut self, policy: &crate::plan::TriggerPolicy) -> Self {
        if matches!(self.trigger, Trigger::Alarm(_)) {
            self.scope = policy.alarm_scope;
        }
        self
    }

    /// Whether this request should act, given the plan's trigger policy; `Err` says why not.
    pub fn should_act(&self, policy: &crate::plan::TriggerPolicy) -> Result<(), String> {
        let Trigger::Alarm(alarm) = &self.trigger else {
            return Ok(());
        };
        if alarm.state != AlarmState::Alarm {
            return Err(format!(
                "alarm {} moved to {}, not ALARM; only transitions into ALARM start a rollback",
                alarm.alarm_name,
                alarm.state.as_str()
            ));
        }
        if alarm.previous_state == AlarmState::Alarm {
            return Err(format!("alarm {} was already in ALARM", alarm.alarm_name));
        }
        if alarm.previous_state == AlarmState::InsufficientData
            && !policy.act_from_insufficient_data
        {
            return Err(format!(
                "alarm {} went INSUFFICIENT_DATA → ALARM (as a new alarm does); the plan's \
                 triggers.act_from_insufficient_data is off",
                alarm.alarm_name
            ));
        }
        Ok(())
    }

    /// A deterministic execution name for this request, so duplicate deliveries of one alarm
    /// transition cannot start two executions (Step Functions refuses a second start with the
    /// same name). Manual starts get `None`: the console names them.
    pub fn dedup_execution_name(&self) -> Option<String> {
        let Trigger::Alarm(alarm) = &self.trigger else {
            return None;
        };
        let stamp = alarm.state_changed_at.format("%Y%m%dT%H%M%SZ").to_string();
        Some(crate::ids::execution_name(
            "alarm",
            &alarm.alarm_name,
            &stamp,
        ))
    }
}

impl AlarmState {
    /// The state as CloudWatch writes it (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// CloudWatch writes `2024-05-01T12:00:00.000+0000`; accept RFC 3339 too.
fn parse_alarm_time(
    errors: &mut ValidationErrors,
    path: &str,
    text: &str,
) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc));
    match parsed {
        Ok(t) => Some(t),
        Err(_) => {
            errors.push(
                path,
                format!(
                    "{:?} is not a timestamp like 2024-05-01T12:00:00.000+0000",
                    validation::truncate(text, 60)
                ),
            );
            None
        }
    }
}
