//! `report`: the post-mortem, written in AWS at the end of every execution that sends a final
//! notice (success, failure, rejection), just before that notice.
//!
//! The function reads its own execution's history (`GetExecutionHistory` on `$$.Execution.Id`:
//! the execution is still running, so the history ends with this step's own scheduled event,
//! which names the outcome), page by page, and for each event:
//! - removes task tokens from scheduled parameters (the approval request's; its task is over,
//!   and a copy kept for a year needs none),
//! - feeds it to the shared renderer's analysis (`rollback_core::report`, the code
//!   `rollbackctl report` runs),
//! - appends it to `history.json`, which goes up as one object, or in parts of
//!   [`PART_SIZE`] (multipart upload) once larger: a worst-case history (≈ 20,000 events of a
//!   few KB) is never held in memory whole.
//!
//! Then `report.md` is rendered from the analysis and written. Keys:
//! `<prefix>/<execution name>/history.json` and `.../report.md`. The bucket is versioned, so a
//! second report of the same execution (a success notice that failed, then the failure path's
//! report) keeps the first as an older version. The output names both objects as `s3://` URIs
//! and gives the S3 console page of `report.md` (a sign-in link, no credentials in it) for the
//! notice.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use rollback_core::contract::notify::{NotifyAction, ReportOutput, ReportRequest};
use rollback_core::report::history::Event;
use rollback_core::report::{Analysis, render};
use rollback_core::{RollbackError, StepInput};

use crate::{Clients, Config, REPORT_BUCKET_ENV};

/// Key prefix when `ROLLBACK_REPORT_PREFIX` is not set.
pub const DEFAULT_PREFIX: &str = "reports";
/// `history.json` larger than this goes up in parts of this size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's smallest part (all but the last): a smaller configured size is raised to it.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// `GetExecutionHistory` page size (its maximum).
const PAGE_SIZE: i32 = 1000;
/// A Standard execution has at most 25,000 events: 25 pages; more means the paging is broken.
const MAX_PAGES: usize = 30;

/// At most this many characters of any message in an error of `report`: the definition keeps
/// the error (the Catch's `{Error, Cause}`) in the failure path's state, next to the notice's
/// observations, where the 256 KiB limit is close at the plan maximums.
pub const MAX_ERROR_MESSAGE: usize = 400;

/// Writes `history.json` and `report.md` for the execution `input.execution`. Errors keep their
/// kind (a throttled call is still retried) with messages cut to [`MAX_ERROR_MESSAGE`].
pub async fn write(
    clients: &Clients,
    config: &Config,
    input: &StepInput<NotifyAction>,
    request: &ReportRequest,
) -> Result<ReportOutput, RollbackError> {
    write_report(clients, config, input, request)
        .await
        .map_err(bounded)
}

/// `err` with every message cut to [`MAX_ERROR_MESSAGE`] characters (at most 3 validation
/// problems), its kind unchanged.
pub fn bounded(err: RollbackError) -> RollbackError {
    let cut = |s: String| rollback_core::validation::truncate(&s, MAX_ERROR_MESSAGE);
    let few = |mut e: rollback_core::ValidationErrors| {
        e.0.truncate(3);
        for f in &mut e.0 {
            f.path = rollback_core::validation::truncate(&f.path, 100);
            f.message = rollback_core::validation::truncate(&f.message, 100);
        }
        e
    };
    match err {
        RollbackError::InvalidPlan(e) => RollbackError::InvalidPlan(few(e)),
        RollbackError::InvalidRequest(e) => RollbackError::InvalidRequest(few(e)),
        RollbackError::InvalidInput(m) => RollbackError::InvalidInput(cut(m)),
        RollbackError::Internal(m) => RollbackError::Internal(cut(m)),
        RollbackError::Throttled { operation, message } => RollbackError::Throttled {
            operation: cut(operation),
            message: cut(message),
        },
        RollbackError::Transient { operation, message } => RollbackError::Transient {
            operation: cut(operation),
            message: cut(message),
        },
        RollbackError::Aws {
            operation,
            code,
            message,
        } => RollbackError::Aws {
            operation: cut(operation),
            code: rollback_core::validation::truncate(&code, 100),
            message: cut(message),
        },
        // The report action raises none of the others; any would be as short as its own text.
        other => other,
    }
}

async fn write_report(
    clients: &Clients,
    config: &Config,
    input: &StepInput<NotifyAction>,
    request: &ReportRequest,
) -> Result<ReportOutput, RollbackError> {
    let bucket = request
        .bucket
        .as_deref()
        .or(config.report_bucket.as_deref())
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            RollbackError::InvalidInput(format!(
                "no report bucket: pass bucket or set {REPORT_BUCKET_ENV}"
            ))
        })?;
    let execution = input.execution.as_str();
    let arn = ExecutionArn::parse(&request.execution_arn, execution)?;
    let prefix = config.report_prefix.trim_matches('/');
    let base = if prefix.is_empty() {
        execution.to_owned()
    } else {
        format!("{prefix}/{execution}")
    };
    let history_key = format!("{base}/history.json");
    let report_key = format!("{base}/report.md");

    let mut analysis = Analysis::new(execution);
    let mut history = Upload::new(
        &clients.s3,
        bucket,
        &history_key,
        "application/json",
        config.report_part_size.max(MIN_PART_SIZE),
    );
    let streamed = stream_history(
        &clients.sfn,
        &request.execution_arn,
        &mut analysis,
        &mut history,
    )
    .await;
    let events = match streamed {
        Ok(events) => events,
        Err(e) => {
            history.abort().await;
            return Err(e);
        }
    };
    if let Err(e) = history.finish().await {
        history.abort().await;
        return Err(e);
    }

    let markdown = render(&analysis.finish());
    let written = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(&report_key)
        .content_type("text/markdown; charset=utf-8")
        .body(ByteStream::from(markdown.into_bytes()))
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("PutObject", e))?;
    tracing::info!(
        bucket,
        report = %report_key,
        history = %history_key,
        events,
        "post-mortem report written"
    );
    Ok(ReportOutput {
        bucket: bucket.to_owned(),
        uri: format!("s3://{bucket}/{report_key}"),
        history_uri: format!("s3://{bucket}/{history_key}"),
        console_url: arn.console_url(bucket, &report_key),
        report_key,
        history_key,
        events,
        version_id: written.version_id,
    })
}

/// Reads every page of the history into `analysis` and `history.json`; returns the number of
/// events.
async fn stream_history(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    analysis: &mut Analysis,
    history: &mut Upload<'_>,
) -> Result<u64, RollbackError> {
    // The `get-execution-history` document, one event a line.
    history.write(b"{\"events\":[\n").await?;
    let mut token = None;
    let mut count = 0u64;
    for _ in 0..MAX_PAGES {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("GetExecutionHistory", e))?;
        for sdk_event in page.events() {
            let mut event = Event::from_sdk(sdk_event);
            event.redact_task_tokens();
            analysis.event(&event);
            let line = serde_json::to_vec(&event)
                .map_err(|e| RollbackError::Internal(format!("history event: {e}")))?;
            if count > 0 {
                history.write(b",\n").await?;
            }
            history.write(&line).await?;
            count += 1;
        }
        token = page.next_token;
        if token.is_none() {
            history.write(b"\n]}\n").await?;
            return Ok(count);
        }
    }
    Err(RollbackError::Internal(format!(
        "GetExecutionHistory did not end after {MAX_PAGES} pages of {PAGE_SIZE} events"
    )))
}

/// `arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>`.
struct ExecutionArn<'a> {
    partition: &'a str,
    region: &'a str,
}

impl<'a> ExecutionArn<'a> {
    /// The execution's ARN, which must name `execution` (the keys derive from the name, so a
    /// report cannot land under another execution's).
    fn parse(arn: &'a str, execution: &str) -> Result<ExecutionArn<'a>, RollbackError> {
        let parts: Vec<&str> = arn.split(':').collect();
        let valid = parts.len() == 8
            && parts[0] == "arn"
            && parts[2] == "states"
            && parts[5] == "execution"
            && !parts[3].is_empty();
        if !valid {
            return Err(RollbackError::InvalidInput(
                "execution_arn: give the execution's ARN ($$.Execution.Id)".into(),
            ));
        }
        if parts[7] != execution {
            return Err(RollbackError::InvalidInput(format!(
                "execution_arn: names execution {:?}, not {execution:?} ($$.Execution.Name)",
                rollback_core::validation::truncate(parts[7], 80)
            )));
        }
        // Step Functions names exclude these; the name is a key segment.
        if execution
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control() || c.is_whitespace())
            || execution == "."
            || execution == ".."
        {
            return Err(RollbackError::InvalidInput(
                "execution: not a Step Functions execution name".into(),
            ));
        }
        Ok(ExecutionArn {
            partition: parts[1],
            region: parts[3],
        })
    }

    /// The S3 console page of one object (sign-in required; the link carries no credentials).
    fn console_url(&self, bucket: &str, key: &str) -> String {
        let console = match self.partition {
            "aws-cn" => "https://console.amazonaws.cn",
            "aws-us-gov" => "https://console.amazonaws-us-gov.com",
            _ => "https://console.aws.amazon.com",
        };
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("region", self.region)
            .append_pair("bucketType", "general")
            .append_pair("prefix", key)
            .finish();
        format!("{console}/s3/object/{bucket}?{query}")
    }
}

/// One object written in order: a single `PutObject` when it stays below the part size,
/// otherwise a multipart upload of `part_size` parts (the last one smaller).
struct Upload<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    content_type: &'static str,
    part_size: usize,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl<'a> Upload<'a> {
    fn new(
        s3: &'a aws_sdk_s3::Client,
        bucket: &'a str,
        key: &'a str,
        content_type: &'static str,
        part_size: usize,
    ) -> Upload<'a> {
        Upload {
            s3,
            bucket,
            key,
            content_type,
            part_size,
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RollbackError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= self.part_size {
            self.send_part().await?;
        }
        Ok(())
    }

    /// Sends what is buffered as the next part (starting the multipart upload first).
    async fn send_part(&mut self) -> Result<(), RollbackError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = self
                    .s3
                    .create_multipart_upload()
                    .bucket(self.bucket)
                    .key(self.key)
                    .content_type(self.content_type)
                    .send()
                    .await
                    .map_err(|e| RollbackError::from_sdk("CreateMultipartUpload", e))?;
                let id = out.upload_id.ok_or_else(|| RollbackError::Aws {
                    operation: "CreateMultipartUpload".into(),
                    code: "NoUploadId".into(),
                    message: "the answer has no UploadId".into(),
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = std::mem::take(&mut self.buf);
        let out = self
            .s3
            .upload_part()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("UploadPart", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    /// Writes the object (or completes the multipart upload); returns its version.
    async fn finish(&mut self) -> Result<Option<String>, RollbackError> {
        let Some(upload_id) = self.upload_id.clone() else {
            let body = std::mem::take(&mut self.buf);
            let out = self
                .s3
                .put_object()
                .bucket(self.bucket)
                .key(self.key)
                .content_type(self.content_type)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| RollbackError::from_sdk("PutObject", e))?;
            return Ok(out.version_id);
        };
        if !self.buf.is_empty() {
            self.send_part().await?;
        }
        let out = self
            .s3
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("CompleteMultipartUpload", e))?;
        self.upload_id = None;
        Ok(out.version_id)
    }

    /// Best effort: drops the parts of an upload that will not complete (the bucket's
    /// lifecycle rule also aborts incomplete uploads after a day).
    async fn abort(&self) {
        let Some(upload_id) = &self.upload_id else {
            return;
        };
        if let Err(e) = self
            .s3
            .abort_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(
                key = %self.key,
                error = %RollbackError::from_sdk("AbortMultipartUpload", e),
                "could not abort the multipart upload; the bucket's lifecycle rule removes it"
            );
        }
    }
}
