//! The functions' IAM policies, read from the SAM template we ship (`infra/template.yaml`).
//!
//! CloudFormation's short tags (`!Sub`, `!Ref`, `!GetAtt`, `!If`, `!Join`, `!Not`, `!Equals`,
//! `!Select`, `!Split`, `!Condition`) are turned into their long forms (`Fn::Sub`…) and
//! resolved with the values a deployment would have: pseudo parameters (partition, region,
//! account, stack name), parameters (given, else their `Default`), conditions, and the
//! physical names of the stack's own resources (`!Ref ApprovalsTopic`,
//! `!GetAtt NoticesTopic.TopicName`), which the caller supplies. Every
//! `AWS::Serverless::Function`'s `Policies` become that function's role: inline
//! `Statement` documents and the SAM policy templates the template uses
//! (`SNSPublishMessagePolicy`, `LambdaInvokePolicy`), each a policy named as SAM names it,
//! `<Function>RolePolicy<N>`. Anything this reader cannot resolve is an error naming it,
//! never a silently broader policy.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::policy::{Condition, Effect, Patterns, Policy, Statement};

/// A function's role as the template defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The function's short name: `RestoreFunction` → `restore`.
    pub function: String,
    /// The template's logical id, e.g. `RestoreFunction`.
    pub logical_id: String,
    pub policies: Vec<Policy>,
}

/// A stack resource's `Ref` value and `Fn::GetAtt` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceValues {
    pub reference: String,
    pub attributes: BTreeMap<String, String>,
}

/// What a deployment of the template resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackValues {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub stack_name: String,
    pub url_suffix: String,
    /// Parameters given at deploy time; the others take their `Default`.
    pub parameters: BTreeMap<String, String>,
    /// The stack's own resources, by logical id.
    pub resources: BTreeMap<String, ResourceValues>,
}

impl StackValues {
    pub fn new(region: &str, account: &str, stack_name: &str) -> StackValues {
        StackValues {
            partition: "aws".into(),
            region: region.into(),
            account: account.into(),
            stack_name: stack_name.into(),
            url_suffix: "amazonaws.com".into(),
            parameters: BTreeMap::new(),
            resources: BTreeMap::new(),
        }
    }

    pub fn parameter(mut self, name: &str, value: &str) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    pub fn resource(
        mut self,
        logical_id: &str,
        reference: &str,
        attributes: &[(&str, &str)],
    ) -> Self {
        self.resources.insert(
            logical_id.into(),
            ResourceValues {
                reference: reference.into(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
        self
    }
}

impl StackValues {
    /// The stack's `ReportBucket` named `bucket` (`!Ref` is its name, `.Arn` its ARN).
    pub fn report_bucket(self, bucket: &str) -> Self {
        let arn = format!("arn:{}:s3:::{bucket}", self.partition);
        self.resource("ReportBucket", bucket, &[("Arn", &arn)])
    }

    /// The stack's approval decision key (`DecisionKey`): `!Ref` is its id, `.Arn` `key_arn`.
    pub fn decision_key(self, key_arn: &str) -> Self {
        let id = key_arn.rsplit('/').next().unwrap_or(key_arn).to_owned();
        self.resource("DecisionKey", &id, &[("Arn", key_arn)])
    }

    /// The stack's SNS topic `logical_id` named `name` (`!Ref` is its ARN, `.TopicName` its
    /// name).
    pub fn topic(self, logical_id: &str, name: &str) -> Self {
        let arn = format!(
            "arn:{}:sns:{}:{}:{name}",
            self.partition, self.region, self.account
        );
        self.resource(logical_id, &arn, &[("TopicName", name)])
    }

    /// The stack's secret `logical_id`, whose name AWS gave the 6-character suffix of
    /// `name_with_suffix` (`!Ref` is its ARN).
    pub fn secret(self, logical_id: &str, name_with_suffix: &str) -> Self {
        let arn = format!(
            "arn:{}:secretsmanager:{}:{}:secret:{name_with_suffix}",
            self.partition, self.region, self.account
        );
        self.resource(logical_id, &arn, &[])
    }
}

/// `RestoreFunction` → `restore`, `DeployUndoFunction` → `deploy-undo`.
pub fn function_name(logical_id: &str) -> String {
    let base = logical_id.strip_suffix("Function").unwrap_or(logical_id);
    let mut out = String::new();
    for (i, c) in base.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The template text as JSON, every short tag in its long form (`!Ref X` → `{"Ref": "X"}`,
/// `!If [...]` → `{"Fn::If": [...]}`), nothing resolved.
pub fn template_json(template_yaml: &str) -> Result<Value, String> {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(template_yaml).map_err(|e| format!("template.yaml: {e}"))?;
    long_form(yaml)
}

/// Reads every function's role from the template text.
pub fn function_roles(template_yaml: &str, values: &StackValues) -> Result<Vec<Role>, String> {
    let template = template_json(template_yaml)?;
    let resolver = Resolver {
        template: &template,
        values,
    };
    let resources = template
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or("template.yaml has no Resources")?;
    let mut roles = Vec::new();
    for (logical_id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let properties = resource.get("Properties").cloned().unwrap_or(json!({}));
        if properties.get("Role").is_some() {
            return Err(format!(
                "{logical_id}: a function with its own Role is not read by the local IAM check"
            ));
        }
        let items = match properties.get("Policies") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
        };
        let mut policies = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let name = format!("{logical_id}RolePolicy{index}");
            let statements = policy_item(&resolver, item)
                .map_err(|e| format!("{logical_id} Policies[{index}]: {e}"))?;
            policies.push(Policy { name, statements });
        }
        roles.push(Role {
            function: function_name(logical_id),
            logical_id: logical_id.clone(),
            policies,
        });
    }
    Ok(roles)
}

/// One entry of a function's `Policies`.
fn policy_item(resolver: &Resolver, item: &Value) -> Result<Vec<Statement>, String> {
    let object = match item {
        Value::String(managed) => {
            return Err(format!(
                "managed policy {managed:?} is not read by the local IAM check; \
                 write its statements inline"
            ));
        }
        Value::Object(object) => object,
        other => return Err(format!("unexpected policy {other}")),
    };
    if object.contains_key("Statement") {
        let document = resolver.resolve(item)?;
        return statements(&document);
    }
    let (name, args) = object
        .iter()
        .next()
        .filter(|_| object.len() == 1)
        .ok_or("a policy is either {Statement: …} or one SAM policy template")?;
    let args = resolver.resolve(args)?;
    let arg = |key: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("{name} needs {key}"))
    };
    let (p, r, a) = (
        &resolver.values.partition,
        &resolver.values.region,
        &resolver.values.account,
    );
    let document = match name.as_str() {
        "SNSPublishMessagePolicy" => json!({"Statement": [{
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": format!("arn:{p}:sns:{r}:{a}:{}", arg("TopicName")?),
        }]}),
        "LambdaInvokePolicy" => json!({"Statement": [{
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": format!("arn:{p}:lambda:{r}:{a}:function:{}*", arg("FunctionName")?),
        }]}),
        other => {
            return Err(format!(
                "SAM policy template {other} is not known to the local IAM check \
                 (local/fault-proxy/src/iam/template.rs)"
            ));
        }
    };
    statements(&document)
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(format!("{what}: {other} is not a string")),
            })
            .collect(),
        other => Err(format!("{what}: {other} is not a string or a list")),
    }
}

fn patterns(statement: &Map<String, Value>, key: &str) -> Result<Patterns, String> {
    let not_key = format!("Not{key}");
    match (statement.get(key), statement.get(&not_key)) {
        (Some(v), None) => Ok(Patterns {
            not: false,
            patterns: strings(v, key)?,
        }),
        (None, Some(v)) => Ok(Patterns {
            not: true,
            patterns: strings(v, &not_key)?,
        }),
        _ => Err(format!(
            "a statement needs exactly one of {key} and {not_key}"
        )),
    }
}

/// The statements of a resolved policy document.
fn statements(document: &Value) -> Result<Vec<Statement>, String> {
    let list = match document.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err("the policy has no Statement".into()),
    };
    let mut out = Vec::new();
    for item in &list {
        let statement = item.as_object().ok_or("a statement is not a mapping")?;
        for key in statement.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            ) {
                return Err(format!(
                    "statement key {key} is not supported in an identity policy"
                ));
            }
        }
        let effect = match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("Effect {other:?} is neither Allow nor Deny")),
        };
        let mut conditions = Vec::new();
        if let Some(block) = statement.get("Condition") {
            let block = block.as_object().ok_or("Condition is not a mapping")?;
            for (operator, keys) in block {
                let keys = keys
                    .as_object()
                    .ok_or(format!("Condition {operator} is not a mapping"))?;
                for (key, values) in keys {
                    conditions.push(Condition::new(operator, key, strings(values, key)?)?);
                }
            }
        }
        out.push(Statement {
            sid: statement
                .get("Sid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            effect,
            actions: patterns(statement, "Action")?,
            resources: patterns(statement, "Resource")?,
            conditions,
        });
    }
    Ok(out)
}

/// YAML → JSON, short tags → long forms (`!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`).
fn long_form(value: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .map_err(|e| e.to_string())?
                        .trim()
                        .to_owned(),
                };
                out.insert(key, long_form(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value)?;
            let (key, inner) = match name {
                "Ref" => ("Ref".to_owned(), inner),
                "Condition" => ("Condition".to_owned(), inner),
                "GetAtt" => {
                    let inner = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((a, b)) => json!([a, b]),
                            None => return Err(format!("!GetAtt {s} has no attribute")),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), inner)
                }
                "Sub" | "If" | "Join" | "Not" | "Equals" | "And" | "Or" | "Select" | "Split"
                | "Base64" | "FindInMap" | "ImportValue" | "GetAZs" | "Cidr" => {
                    (format!("Fn::{name}"), inner)
                }
                other => return Err(format!("unknown tag !{other}")),
            };
            let mut out = Map::new();
            out.insert(key, inner);
            Value::Object(out)
        }
    })
}

struct Resolver<'a> {
    template: &'a Value,
    values: &'a StackValues,
}

impl Resolver<'_> {
    /// Resolves every intrinsic function in `value`. `AWS::NoValue` disappears.
    fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(self.resolve_opt(value)?.unwrap_or(Value::Null))
    }

    fn resolve_opt(&self, value: &Value) -> Result<Option<Value>, String> {
        match value {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if let Some(resolved) = self.resolve_opt(item)? {
                        out.push(resolved);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                self.function(key, arg, map)
            }
            Value::Object(map) => self.resolve_map(map).map(Some),
            other => Ok(Some(other.clone())),
        }
    }

    /// A one-key object: the intrinsic function it names, or a plain map.
    fn function(
        &self,
        key: &str,
        arg: &Value,
        map: &Map<String, Value>,
    ) -> Result<Option<Value>, String> {
        match key {
            "Ref" => self.fn_ref(arg),
            "Fn::GetAtt" => {
                let parts = strings(arg, "Fn::GetAtt")?;
                let [resource, attribute] = parts.as_slice() else {
                    return Err(format!("Fn::GetAtt {parts:?}"));
                };
                self.attribute(resource, attribute)
                    .map(|s| Some(Value::String(s)))
            }
            "Fn::Sub" => self.sub(arg).map(|s| Some(Value::String(s))),
            "Fn::If" => {
                let items = arg
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .ok_or("Fn::If needs 3 items")?;
                let name = items[0].as_str().ok_or("Fn::If needs a condition name")?;
                let chosen = if self.condition(name)? {
                    &items[1]
                } else {
                    &items[2]
                };
                self.resolve_opt(chosen)
            }
            "Fn::Join" => {
                let items = arg
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or("Fn::Join needs 2 items")?;
                let separator = items[0].as_str().ok_or("Fn::Join separator")?;
                let parts = strings(&self.resolve(&items[1])?, "Fn::Join")?;
                Ok(Some(Value::String(parts.join(separator))))
            }
            "Fn::Select" => self.fn_select(arg),
            "Fn::Split" => {
                let items = arg
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or("Fn::Split needs 2 items")?;
                let separator = items[0].as_str().ok_or("Fn::Split separator")?;
                let text = self.resolve(&items[1])?;
                let text = text.as_str().ok_or("Fn::Split needs a string")?;
                Ok(Some(json!(text.split(separator).collect::<Vec<_>>())))
            }
            k if k.starts_with("Fn::") => {
                Err(format!("{k} is not resolved by the local IAM check"))
            }
            _ => self.resolve_map(map).map(Some),
        }
    }

    /// `Ref`: a pseudo parameter, parameter or resource; `AWS::NoValue` disappears, and a list
    /// parameter is its comma-separated members.
    fn fn_ref(&self, arg: &Value) -> Result<Option<Value>, String> {
        let name = arg.as_str().ok_or("Ref needs a name")?;
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        let value = self.reference(name)?;
        if self.is_list_parameter(name) {
            // As CloudFormation: the comma-separated members, each trimmed.
            let members: Vec<&str> = value.split(',').map(str::trim).collect();
            return Ok(Some(json!(members)));
        }
        Ok(Some(Value::String(value)))
    }

    fn fn_select(&self, arg: &Value) -> Result<Option<Value>, String> {
        let items = arg
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or("Fn::Select needs 2 items")?;
        let index = match self.resolve(&items[0])? {
            Value::String(s) => s.parse::<usize>().map_err(|e| e.to_string())?,
            Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
            other => return Err(format!("Fn::Select index {other}")),
        };
        let list = self.resolve(&items[1])?;
        list.get(index)
            .cloned()
            .map(Some)
            .ok_or(format!("Fn::Select index {index} out of range"))
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Value, String> {
        let mut out = Map::new();
        for (k, v) in map {
            if let Some(v) = self.resolve_opt(v)? {
                out.insert(k.clone(), v);
            }
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, name: &str) -> Result<String, String> {
        let v = self.values;
        match name {
            "AWS::Partition" => return Ok(v.partition.clone()),
            "AWS::Region" => return Ok(v.region.clone()),
            "AWS::AccountId" => return Ok(v.account.clone()),
            "AWS::StackName" => return Ok(v.stack_name.clone()),
            "AWS::URLSuffix" => return Ok(v.url_suffix.clone()),
            _ => {}
        }
        if let Some(parameter) = self.template.get("Parameters").and_then(|p| p.get(name)) {
            if let Some(given) = v.parameters.get(name) {
                return Ok(given.clone());
            }
            return match parameter.get("Default") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(format!(
                    "parameter {name} has no Default and no value was given for the local IAM check"
                )),
            };
        }
        if let Some(resource) = v.resources.get(name) {
            return Ok(resource.reference.clone());
        }
        Err(format!(
            "Ref {name}: no value given for the local IAM check"
        ))
    }

    /// A `CommaDelimitedList` or `List<…>` parameter: its `Ref` is a list.
    fn is_list_parameter(&self, name: &str) -> bool {
        self.template
            .get("Parameters")
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("Type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, String> {
        self.values
            .resources
            .get(resource)
            .and_then(|r| r.attributes.get(attribute))
            .cloned()
            .ok_or(format!(
                "Fn::GetAtt {resource}.{attribute}: no value given for the local IAM check"
            ))
    }

    fn sub(&self, arg: &Value) -> Result<String, String> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(items) if items.len() == 2 => {
                let text = items[0].as_str().ok_or("Fn::Sub needs a string")?;
                let vars = items[1].as_object().ok_or("Fn::Sub variables")?;
                let mut resolved = Map::new();
                for (k, v) in vars {
                    resolved.insert(k.clone(), self.resolve(v)?);
                }
                (text, resolved)
            }
            other => return Err(format!("Fn::Sub {other}")),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or(format!("Fn::Sub {text:?}: unclosed ${{"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(
                    value
                        .as_str()
                        .ok_or(format!("Fn::Sub {name} is not a string"))?,
                );
            } else if let Some((resource, attribute)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                out.push_str(&self.attribute(resource, attribute)?);
            } else if self.is_list_parameter(name) {
                return Err(format!(
                    "Fn::Sub {text:?}: {name} is a list parameter (join or select it first)"
                ));
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn condition(&self, name: &str) -> Result<bool, String> {
        let body = self
            .template
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or(format!("condition {name} is not defined"))?;
        self.truth(body)
    }

    fn truth(&self, value: &Value) -> Result<bool, String> {
        let map = value
            .as_object()
            .filter(|m| m.len() == 1)
            .ok_or(format!("condition {value}"))?;
        let (key, arg) = map.iter().next().expect("one entry");
        let items = || arg.as_array().cloned().unwrap_or_default();
        match key.as_str() {
            "Condition" => self.condition(arg.as_str().ok_or("Condition needs a name")?),
            "Fn::Equals" => {
                let items = items();
                let [a, b] = items.as_slice() else {
                    return Err("Fn::Equals needs 2 items".into());
                };
                Ok(self.resolve(a)? == self.resolve(b)?)
            }
            "Fn::Not" => Ok(!self.truth(items().first().ok_or("Fn::Not needs 1 item")?)?),
            "Fn::And" => {
                let mut all = true;
                for item in items() {
                    all &= self.truth(&item)?;
                }
                Ok(all)
            }
            "Fn::Or" => {
                let mut any = false;
                for item in items() {
                    any |= self.truth(&item)?;
                }
                Ok(any)
            }
            other => Err(format!("condition function {other} is not supported")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  ServiceName:
    Type: String
  DatabaseIdPrefix:
    Type: String
    Default: ""
Conditions:
  DefaultDatabasePrefix: !Equals [!Ref DatabaseIdPrefix, ""]
Resources:
  Topic:
    Type: AWS::SNS::Topic
  RestoreFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Rename
              Effect: Allow
              Action: [rds:ModifyDBInstance]
              Resource:
                - !Sub
                  - "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${Prefix}-*"
                  - Prefix: !If [DefaultDatabasePrefix, !Ref ServiceName, !Ref DatabaseIdPrefix]
              Condition:
                StringEquals:
                  kms:ViaService: !Sub "rds.${AWS::Region}.amazonaws.com"
        - SNSPublishMessagePolicy:
            TopicName: !GetAtt Topic.TopicName
"#;

    #[test]
    fn reads_policies_with_short_tags() {
        let values = StackValues::new("us-east-1", "123456789012", "mint")
            .parameter("ServiceName", "mint-replica")
            .resource(
                "Topic",
                "arn:aws:sns:us-east-1:123456789012:t",
                &[("TopicName", "t")],
            );
        let roles = function_roles(TEMPLATE, &values).unwrap();
        assert_eq!(roles.len(), 1);
        let role = &roles[0];
        assert_eq!(role.function, "restore");
        assert_eq!(role.policies[0].name, "RestoreFunctionRolePolicy0");
        let s = &role.policies[0].statements[0];
        assert_eq!(
            s.resources.patterns,
            ["arn:aws:rds:us-east-1:123456789012:db:mint-replica-*"]
        );
        assert_eq!(s.conditions[0].values, ["rds.us-east-1.amazonaws.com"]);
        let sns = &role.policies[1].statements[0];
        assert_eq!(
            sns.resources.patterns,
            ["arn:aws:sns:us-east-1:123456789012:t"]
        );
        let other = values.clone().parameter("DatabaseIdPrefix", "db");
        let roles = function_roles(TEMPLATE, &other).unwrap();
        assert!(roles[0].policies[0].statements[0].resources.patterns[0].ends_with(":db:db-*"));
        // Without the service name there is nothing to resolve the prefix with.
        let err = function_roles(TEMPLATE, &StackValues::new("r", "a", "s")).unwrap_err();
        assert!(err.contains("ServiceName"), "{err}");
    }

    /// The VPC parameters: CommaDelimitedLists, empty by default, tested for emptiness by
    /// joining them; a condition that chooses statements, and `AWS::NoValue` dropping one.
    const VPC_TEMPLATE: &str = r#"
Parameters:
  SubnetIds:
    Type: CommaDelimitedList
    Default: ""
  SecurityGroupIds:
    Type: CommaDelimitedList
    Default: ""
Conditions:
  HasSubnetIds: !Not [!Equals [!Join [",", !Ref SubnetIds], ""]]
  HasSecurityGroupIds: !Not [!Equals [!Join [",", !Ref SecurityGroupIds], ""]]
  InVpc: !Or [!Condition HasSubnetIds, !Condition HasSecurityGroupIds]
  BothGiven: !And [!Condition HasSubnetIds, !Condition HasSecurityGroupIds]
Resources:
  SmokeTestFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Always
              Effect: Allow
              Action: cloudwatch:DescribeAlarms
              Resource: "*"
            - !If
              - InVpc
              - Sid: InVpc
                Effect: Allow
                Action: ec2:DescribeSubnets
                Resource: !Join
                  - ""
                  - - !Sub "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/"
                    - !Select [1, !Ref SubnetIds]
              - !Ref AWS::NoValue
            - Sid: Both
              Effect: Allow
              Action: ec2:DescribeSecurityGroups
              Resource: !If [BothGiven, !Join [",", !Ref SecurityGroupIds], "none"]
"#;

    #[test]
    fn list_parameters_and_conditions_choose_statements() {
        let sids = |values: &StackValues| -> Vec<Statement> {
            let roles = function_roles(VPC_TEMPLATE, values).unwrap();
            roles[0].policies[0].statements.clone()
        };
        let outside = StackValues::new("us-east-1", "123456789012", "mint");
        let statements = sids(&outside);
        let names: Vec<_> = statements.iter().filter_map(|s| s.sid.clone()).collect();
        assert_eq!(
            names,
            ["Always", "Both"],
            "AWS::NoValue drops the VPC statement"
        );
        assert_eq!(statements[1].resources.patterns, ["none"]);

        let inside = outside
            .clone()
            .parameter("SubnetIds", "subnet-a, subnet-b")
            .parameter("SecurityGroupIds", "sg-1,sg-2");
        let statements = sids(&inside);
        let names: Vec<_> = statements.iter().filter_map(|s| s.sid.clone()).collect();
        assert_eq!(names, ["Always", "InVpc", "Both"]);
        assert_eq!(
            statements[1].resources.patterns,
            ["arn:aws:ec2:us-east-1:123456789012:subnet/subnet-b"],
            "members are trimmed"
        );
        assert_eq!(statements[2].resources.patterns, ["sg-1,sg-2"]);

        // One of the two: InVpc, but not both.
        let half = outside.clone().parameter("SecurityGroupIds", "sg-1");
        let err = function_roles(VPC_TEMPLATE, &half).unwrap_err();
        assert!(err.contains("Fn::Select index 1 out of range"), "{err}");
    }

    #[test]
    fn a_list_parameter_in_sub_is_an_error() {
        let template = VPC_TEMPLATE.replace(
            "Resource: \"*\"\n            - !If",
            "Resource: !Sub \"${SubnetIds}\"\n            - !If",
        );
        assert_ne!(template, VPC_TEMPLATE);
        let values = StackValues::new("us-east-1", "123456789012", "mint");
        let err = function_roles(&template, &values).unwrap_err();
        assert!(err.contains("SubnetIds is a list parameter"), "{err}");
    }

    #[test]
    fn names() {
        assert_eq!(function_name("DeployUndoFunction"), "deploy-undo");
        assert_eq!(function_name("SmokeTestFunction"), "smoke-test");
    }
}
