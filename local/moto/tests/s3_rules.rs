//! The S3 rule `local/moto/rules/s3.py` adds: a conditional PutObject (`If-None-Match: *`) is
//! atomic, as in S3. The approvals ledger counts each approver once because of it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use rollback_moto::MotoServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_writes_of_one_key_have_one_winner() {
    let moto = MotoServer::start().expect("moto starts");
    let s3 = rollback_core::aws::s3_client(&moto.sdk_config());
    s3.create_bucket().bucket("ledger").send().await.unwrap();
    for key in 0..10 {
        let writes = (0..20).map(|writer| {
            let s3 = s3.clone();
            tokio::spawn(async move {
                s3.put_object()
                    .bucket("ledger")
                    .key(format!("slot-{key}"))
                    .if_none_match("*")
                    .body(format!("writer {writer}").into_bytes().into())
                    .send()
                    .await
                    .map(|_| writer)
                    .map_err(|e| e.code().unwrap_or("no code").to_owned())
            })
        });
        let mut winners = Vec::new();
        for write in writes {
            match write.await.unwrap() {
                Ok(writer) => winners.push(writer),
                Err(code) => assert_eq!(code, "PreconditionFailed"),
            }
        }
        assert_eq!(winners.len(), 1, "slot-{key}: writers {winners:?} all won");
        let stored = s3
            .get_object()
            .bucket("ledger")
            .key(format!("slot-{key}"))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(stored.as_ref(), format!("writer {}", winners[0]).as_bytes());
    }
}
