//! What the tests of several crates store in moto the same way. Seeding is test setup: these
//! panic when moto refuses.

use rollback_core::approval_link::LinkKey;

use crate::MotoServer;

impl MotoServer {
    /// Stores `value` as the String parameter `name`, overwriting (as `rollbackctl plan push`
    /// stores a plan); returns the parameter's new version.
    pub async fn put_parameter(&self, name: &str, value: &str) -> i64 {
        aws_sdk_ssm::Client::new(&self.sdk_config())
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("PutParameter")
            .version
    }

    /// A fresh approval link key stored as the secret `name`, as a stack's `ApprovalLinkKey`
    /// holds it: the key's bytes (for `LinkKey::from_bytes`) and the secret's ARN.
    pub async fn link_key_secret(&self, name: &str) -> ([u8; 32], String) {
        let bytes = LinkKey::generate_secret_bytes();
        let arn = aws_sdk_secretsmanager::Client::new(&self.sdk_config())
            .create_secret()
            .name(name)
            .secret_string(LinkKey::encode_secret(&bytes))
            .send()
            .await
            .expect("CreateSecret")
            .arn()
            .expect("the secret's ARN")
            .to_owned();
        (bytes, arn)
    }
}
