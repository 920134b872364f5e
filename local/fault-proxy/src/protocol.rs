//! Recognising the AWS protocol of a request, naming its operation, and rendering errors the
//! way that protocol's services do, so the SDK parses them exactly as it would AWS's.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use crate::schedule::FaultKind;

/// The wire protocols the project's SDK clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AWS query: a form body (or query string) with `Action=` (RDS, SNS, STS, CloudWatch 1.99).
    Query,
    /// AWS JSON 1.0 / 1.1: `X-Amz-Target: Service.Operation` (ECR, Secrets Manager, SFN, SQS).
    Json,
    /// REST-JSON: the operation is in the method and path (EKS).
    RestJson,
    /// REST-XML, as S3 speaks it (signed as `s3`): the operation is in the method, the path
    /// (`/<bucket>/<key>`, path-style) and the query (`?uploads`, `?uploadId=`…).
    RestXml,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Query => "query",
            Protocol::Json => "json",
            Protocol::RestJson => "rest-json",
            Protocol::RestXml => "rest-xml",
        }
    }
}

/// What the schedule and the log need to know about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub protocol: Protocol,
    /// The SigV4 signing name (`rds`, `ecr`, `eks`…), when the request is signed.
    pub service: Option<String>,
    /// The access key id in the SigV4 credential scope: who is calling.
    pub access_key: Option<String>,
    /// The region in the SigV4 credential scope.
    pub region: Option<String>,
    pub operation: String,
    pub method: String,
    pub path: String,
}

impl RequestInfo {
    pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> RequestInfo {
        let path = uri.path().to_owned();
        let scope = credential_scope(uri, headers);
        let part = |i: usize| scope.as_ref().and_then(|s| s.get(i).cloned());
        let (access_key, region, service) = (part(0), part(2), part(3));
        let (protocol, operation) = if service.as_deref() == Some("s3") {
            (
                Protocol::RestXml,
                s3_operation(method, &path, uri.query().unwrap_or_default()).to_owned(),
            )
        } else if let Some(target) = header_str(headers, "x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target);
            (Protocol::Json, op.to_owned())
        } else if let Some(action) = query_action(uri, headers, body) {
            (Protocol::Query, action)
        } else {
            let op = rest_operation(method, &path)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{method} {path}"));
            (Protocol::RestJson, op)
        };
        RequestInfo {
            protocol,
            service,
            access_key,
            region,
            operation,
            method: method.to_string(),
            path,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_action(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let find = |bytes: &[u8]| {
        url::form_urlencoded::parse(bytes)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned())
    };
    if let Some(action) = uri.query().and_then(|q| find(q.as_bytes())) {
        return Some(action);
    }
    let form = header_str(headers, CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form { find(body) } else { None }
}

/// `Credential=<key>/<date>/<region>/<service>/aws4_request` from the Authorization header
/// or a presigned URL's `X-Amz-Credential`, split at `/`.
fn credential_scope(uri: &Uri, headers: &HeaderMap) -> Option<Vec<String>> {
    let split = |scope: &str| {
        let parts: Vec<String> = scope.split('/').map(str::to_owned).collect();
        (parts.len() >= 4).then_some(parts)
    };
    if let Some(auth) = header_str(headers, AUTHORIZATION.as_str()) {
        let cred = auth.split("Credential=").nth(1)?;
        return split(cred.split([',', ' ']).next()?);
    }
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| split(&v))
}

/// The S3 operation of a path-style request (`/<bucket>` or `/<bucket>/<key>`), named as the
/// S3 API names it, from the method and the query parameters that select a sub-resource.
pub fn s3_operation(method: &Method, path: &str, query: &str) -> &'static str {
    let keys: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    let has = |k: &str| keys.iter().any(|q| q == k);
    let object = path
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty());
    if path.trim_matches('/').is_empty() {
        return if method == Method::GET {
            "ListBuckets"
        } else {
            "S3Request"
        };
    }
    match (method.as_str(), object) {
        ("PUT", true) if has("uploadId") && has("partNumber") => "UploadPart",
        ("PUT", true) => "PutObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", false) if has("versioning") => "PutBucketVersioning",
        ("PUT", false) => "CreateBucket",
        ("GET", false) if has("versions") => "ListObjectVersions",
        ("GET", false) => "ListObjects",
        ("HEAD", false) => "HeadBucket",
        ("DELETE", false) => "DeleteBucket",
        _ => "S3Request",
    }
}

/// The EKS operations the functions call, named so rules can say `DescribeCluster`.
fn rest_operation(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["clusters"]) => Some("ListClusters"),
        ("POST", ["clusters"]) => Some("CreateCluster"),
        ("GET", ["clusters", _]) => Some("DescribeCluster"),
        ("DELETE", ["clusters", _]) => Some("DeleteCluster"),
        _ => None,
    }
}

/// A rendered error answer.
#[derive(Debug, Clone)]
pub struct ErrorAnswer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub body: String,
}

/// How AWS answers a fault: the status, the error code in each protocol, the message.
struct FaultCodes {
    status: StatusCode,
    query_code: &'static str,
    json_code: &'static str,
    rest_code: &'static str,
    message: &'static str,
}

impl FaultCodes {
    fn of(kind: FaultKind) -> FaultCodes {
        let (status, query_code, json_code, rest_code, message) = match kind {
            FaultKind::Throttle => (
                StatusCode::BAD_REQUEST,
                "Throttling",
                "ThrottlingException",
                "TooManyRequestsException",
                "Rate exceeded",
            ),
            FaultKind::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "ServiceUnavailable",
                "ServiceUnavailableException",
                "The request has failed due to a temporary failure of the server.",
            ),
            // Only the answered kinds reach here; anything else is rendered as a server failure.
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "InternalFailure",
                "ServerException",
                "The request processing has failed because of an unknown error, exception or failure.",
            ),
        };
        FaultCodes {
            status,
            query_code,
            json_code,
            rest_code,
            message,
        }
    }
}

/// The error answer for `kind` (one of the answered faults) in `protocol`'s shape.
/// `json_content_type` echoes the request's `application/x-amz-json-1.x`.
pub fn error_answer(
    protocol: Protocol,
    kind: FaultKind,
    request_id: &str,
    json_content_type: Option<&HeaderValue>,
) -> ErrorAnswer {
    let FaultCodes {
        status,
        query_code,
        json_code,
        rest_code,
        message,
    } = FaultCodes::of(kind);
    let request_id_header = HeaderValue::from_str(request_id)
        .unwrap_or_else(|_| HeaderValue::from_static("fault-proxy"));
    let mut headers = vec![("x-amzn-requestid", request_id_header)];
    match protocol {
        Protocol::Query => {
            let error_type = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            headers.push((CONTENT_TYPE.as_str(), HeaderValue::from_static("text/xml")));
            let body = format!(
                "<ErrorResponse><Error><Type>{error_type}</Type><Code>{query_code}</Code>\
                 <Message>{message}</Message></Error><RequestId>{request_id}</RequestId>\
                 </ErrorResponse>"
            );
            ErrorAnswer {
                status,
                headers,
                body,
            }
        }
        Protocol::Json => {
            let content_type = json_content_type
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("application/x-amz-json-1.1"));
            headers.push((CONTENT_TYPE.as_str(), content_type));
            headers.push(("x-amzn-errortype", HeaderValue::from_static(json_code)));
            let body = format!(r#"{{"__type": "{json_code}", "message": "{message}"}}"#);
            ErrorAnswer {
                status,
                headers,
                body,
            }
        }
        Protocol::RestXml => {
            // S3 throttles with 503 SlowDown and fails with 500 InternalError.
            let (status, code) = match kind {
                FaultKind::Throttle => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
                FaultKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            };
            headers.push((
                CONTENT_TYPE.as_str(),
                HeaderValue::from_static("application/xml"),
            ));
            ErrorAnswer {
                status,
                headers,
                body: s3_error(code, message, request_id),
            }
        }
        Protocol::RestJson => {
            let status = if kind == FaultKind::Throttle {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                status
            };
            headers.push((
                CONTENT_TYPE.as_str(),
                HeaderValue::from_static("application/json"),
            ));
            headers.push(("x-amzn-errortype", HeaderValue::from_static(rest_code)));
            let body = format!(r#"{{"message": "{message}"}}"#);
            ErrorAnswer {
                status,
                headers,
                body,
            }
        }
    }
}

/// S3's error document.
fn s3_error(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    )
}

/// AWS's answer to a call the caller's policies do not allow, in `protocol`'s shape: query
/// services answer 403 `AccessDenied` (SNS: `AuthorizationError`), JSON services 400
/// `AccessDeniedException`, REST-JSON services 403 `AccessDeniedException`, S3 403
/// `AccessDenied`.
pub fn access_denied_answer(
    protocol: Protocol,
    service: Option<&str>,
    message: &str,
    request_id: &str,
    json_content_type: Option<&HeaderValue>,
) -> ErrorAnswer {
    let request_id_header = HeaderValue::from_str(request_id)
        .unwrap_or_else(|_| HeaderValue::from_static("fault-proxy"));
    let mut headers = vec![("x-amzn-requestid", request_id_header)];
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let json_message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    match protocol {
        Protocol::Query => {
            let code = if service == Some("sns") {
                "AuthorizationError"
            } else {
                "AccessDenied"
            };
            headers.push((CONTENT_TYPE.as_str(), HeaderValue::from_static("text/xml")));
            ErrorAnswer {
                status: StatusCode::FORBIDDEN,
                headers,
                body: format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                     <Message>{escaped}</Message></Error><RequestId>{request_id}</RequestId>\
                     </ErrorResponse>"
                ),
            }
        }
        Protocol::Json => {
            let content_type = json_content_type
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("application/x-amz-json-1.1"));
            headers.push((CONTENT_TYPE.as_str(), content_type));
            headers.push((
                "x-amzn-errortype",
                HeaderValue::from_static("AccessDeniedException"),
            ));
            ErrorAnswer {
                status: StatusCode::BAD_REQUEST,
                headers,
                body: format!(
                    r#"{{"__type": "AccessDeniedException", "message": {json_message}}}"#
                ),
            }
        }
        Protocol::RestJson => {
            headers.push((
                CONTENT_TYPE.as_str(),
                HeaderValue::from_static("application/json"),
            ));
            headers.push((
                "x-amzn-errortype",
                HeaderValue::from_static("AccessDeniedException"),
            ));
            ErrorAnswer {
                status: StatusCode::FORBIDDEN,
                headers,
                body: format!(r#"{{"message": {json_message}}}"#),
            }
        }
        Protocol::RestXml => {
            headers.push((
                CONTENT_TYPE.as_str(),
                HeaderValue::from_static("application/xml"),
            ));
            ErrorAnswer {
                status: StatusCode::FORBIDDEN,
                headers,
                body: s3_error("AccessDenied", &escaped, request_id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> RequestInfo {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        RequestInfo::parse(
            &method.parse().unwrap(),
            &uri.parse().unwrap(),
            &map,
            body.as_bytes(),
        )
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/rds/aws4_request, \
                        SignedHeaders=host, Signature=abc";

    #[test]
    fn recognises_each_protocol_and_operation() {
        let q = parse(
            "POST",
            "/",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", AUTH),
            ],
            "Action=DescribeDBInstances&Version=2014-10-31",
        );
        assert_eq!(q.protocol, Protocol::Query);
        assert_eq!(q.operation, "DescribeDBInstances");
        assert_eq!(q.service.as_deref(), Some("rds"));

        let j = parse(
            "POST",
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                (
                    "x-amz-target",
                    "AmazonEC2ContainerRegistry_V20150921.BatchGetImage",
                ),
            ],
            "{}",
        );
        assert_eq!(
            (j.protocol, j.operation.as_str()),
            (Protocol::Json, "BatchGetImage")
        );
        assert_eq!(j.service, None);

        let r = parse("GET", "/clusters/prod", &[], "");
        assert_eq!(
            (r.protocol, r.operation.as_str()),
            (Protocol::RestJson, "DescribeCluster")
        );
        let other = parse("POST", "/clusters/prod/updates", &[], "{}");
        assert_eq!(other.operation, "POST /clusters/prod/updates");

        let get_query = parse(
            "GET",
            "/?Action=GetCallerIdentity&Version=2011-06-15",
            &[],
            "",
        );
        assert_eq!(get_query.protocol, Protocol::Query);
        assert_eq!(get_query.operation, "GetCallerIdentity");
        // A JSON body that merely contains "Action=" is not the query protocol.
        let json_body = parse(
            "PUT",
            "/x",
            &[("content-type", "application/json")],
            "Action=1",
        );
        assert_eq!(json_body.protocol, Protocol::RestJson);
    }

    #[test]
    fn recognises_s3_operations_by_method_path_and_query() {
        let s3 = "AWS4-HMAC-SHA256 Credential=ASIANOTIFY/20250101/us-east-1/s3/aws4_request, \
                  SignedHeaders=host, Signature=abc";
        let op = |method: &str, uri: &str| {
            let info = parse(method, uri, &[("authorization", s3)], "");
            assert_eq!(info.protocol, Protocol::RestXml, "{method} {uri}");
            assert_eq!(info.service.as_deref(), Some("s3"));
            info.operation
        };
        assert_eq!(
            op("PUT", "/reports-bucket/reports/e1/report.md"),
            "PutObject"
        );
        assert_eq!(
            op("PUT", "/b/reports/e1/history.json?x-id=PutObject"),
            "PutObject"
        );
        assert_eq!(
            op("POST", "/b/k/history.json?uploads"),
            "CreateMultipartUpload"
        );
        assert_eq!(
            op("PUT", "/b/k/history.json?partNumber=2&uploadId=u1"),
            "UploadPart"
        );
        assert_eq!(op("POST", "/b/k?uploadId=u1"), "CompleteMultipartUpload");
        assert_eq!(op("DELETE", "/b/k?uploadId=u1"), "AbortMultipartUpload");
        assert_eq!(op("GET", "/b/k"), "GetObject");
        assert_eq!(op("PUT", "/b"), "CreateBucket");
        assert_eq!(op("PUT", "/b?versioning"), "PutBucketVersioning");
        assert_eq!(op("GET", "/"), "ListBuckets");
        // Even a form body with "Action=" is S3's when S3 signed it.
        let form = parse(
            "PUT",
            "/b/k",
            &[
                ("authorization", s3),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "Action=Publish",
        );
        assert_eq!(form.operation, "PutObject");
    }

    #[test]
    fn error_shapes() {
        let q = error_answer(Protocol::Query, FaultKind::Throttle, "rid", None);
        assert_eq!(q.status, StatusCode::BAD_REQUEST);
        assert!(
            q.body
                .contains("<Type>Sender</Type><Code>Throttling</Code>")
        );
        assert!(q.body.contains("<RequestId>rid</RequestId>"));
        let q = error_answer(Protocol::Query, FaultKind::Unavailable, "rid", None);
        assert_eq!(q.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            q.body
                .contains("<Type>Receiver</Type><Code>ServiceUnavailable</Code>")
        );

        let ct = HeaderValue::from_static("application/x-amz-json-1.0");
        let j = error_answer(Protocol::Json, FaultKind::Throttle, "rid", Some(&ct));
        assert_eq!(j.status, StatusCode::BAD_REQUEST);
        assert!(j.headers.contains(&("content-type", ct)));
        assert!(j.body.contains(r#""__type": "ThrottlingException""#));

        let r = error_answer(Protocol::RestJson, FaultKind::Throttle, "rid", None);
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let x = error_answer(Protocol::RestXml, FaultKind::Throttle, "rid", None);
        assert_eq!(x.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(x.body.contains("<Code>SlowDown</Code>"), "{}", x.body);
        let denied = access_denied_answer(Protocol::RestXml, Some("s3"), "no <way>", "rid", None);
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(
            denied
                .body
                .contains("<Code>AccessDenied</Code><Message>no &lt;way&gt;</Message>"),
            "{}",
            denied.body
        );
        let r = error_answer(Protocol::RestJson, FaultKind::InternalError, "rid", None);
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.headers.contains(&(
            "x-amzn-errortype",
            HeaderValue::from_static("ServerException")
        )));
    }
}
