//! kestrel's SigV4 signature of fixed requests (fixed credentials and time) is the one
//! botocore computes for the same requests: moto checks no signature, so this is where a
//! signing mistake shows. Needs python3 with botocore (installed with moto by
//! `scripts/services/moto-install`); without it the test says so and passes, unless
//! `KESTREL_REQUIRE_MOTO` is set.

#![allow(clippy::unwrap_used)] // Test code: a failure is a failed test.

use kestrel_store_aws::testing::REQUIRE_VARIABLE;
use kestrel_store_aws::{Credentials, Unsigned, signed_headers};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// Signs like botocore, at the time given, the request read as JSON on stdin (credentials
/// travel there, never in arguments).
const BOTOCORE_SIGNS: &str = r#"
import datetime, json, sys
from unittest import mock
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
i = json.load(sys.stdin)
request = AWSRequest(method="POST", url=i["url"], data=i["body"].encode(), headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "secretsmanager." + i["operation"],
})
at = datetime.datetime.fromtimestamp(i["time"], datetime.timezone.utc).replace(tzinfo=None)
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
    signer = botocore.auth.SigV4Auth(
        Credentials(i["access"], i["secret"], i["token"]), "secretsmanager", i["region"])
    signer.add_auth(request)
print(json.dumps({k.lower(): v for k, v in request.headers.items()
                  if k.lower() in ("authorization", "x-amz-date", "x-amz-security-token")}))
"#;

/// 2015-08-30T12:36:00Z, the time of AWS's own signing examples.
const FIXED_TIME: u64 = 1_440_938_160;

struct Case<'a> {
    endpoint: &'a str,
    region: &'a str,
    operation: &'a str,
    body: &'a str,
    token: Option<&'a str>,
}

fn credentials(token: Option<&str>) -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token.map(str::to_owned),
        None,
        "test",
    )
}

/// The signature headers botocore gives `case`, or why botocore cannot run.
fn botocore(case: &Case<'_>) -> Result<BTreeMap<String, String>, String> {
    let input = serde_json::json!({
        "url": format!("{}/", case.endpoint),
        "region": case.region,
        "operation": case.operation,
        "body": case.body,
        "access": "AKIDEXAMPLE",
        "secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "token": case.token,
        "time": FIXED_TIME,
    });
    let mut child = Command::new("python3")
        .args(["-c", BOTOCORE_SIGNS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("python3 with botocore failed: {}", stderr.trim()));
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

/// kestrel's signature headers for `case`.
fn kestrel(case: &Case<'_>) -> BTreeMap<String, String> {
    let unsigned = Unsigned {
        endpoint: case.endpoint,
        region: case.region,
        operation: case.operation,
        body: case.body.as_bytes(),
    };
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
    signed_headers(unsigned, &credentials(case.token), time)
        .unwrap()
        .into_iter()
        .filter(|(name, _)| {
            ["authorization", "x-amz-date", "x-amz-security-token"].contains(&name.as_str())
        })
        .collect()
}

#[test]
fn kestrel_signs_requests_as_botocore_does() {
    let cases = [
        Case {
            endpoint: "https://secretsmanager.us-east-1.amazonaws.com",
            region: "us-east-1",
            operation: "GetSecretValue",
            body: r#"{"SecretId":"kestrel/main/company.team/API_KEY"}"#,
            token: None,
        },
        Case {
            endpoint: "http://127.0.0.1:5000",
            region: "eu-west-3",
            operation: "PutSecretValue",
            body: r#"{"SecretId":"kestrel/main/a/K","SecretString":"{\"p\":\"v \u00e9\"}"}"#,
            token: Some("FwoGZXIvYXdzEXAMPLE/+=token"),
        },
    ];
    for case in &cases {
        let expected = match botocore(case) {
            Ok(headers) => headers,
            Err(missing) if std::env::var_os(REQUIRE_VARIABLE).is_none() => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED the signing comparison: {missing} (scripts/services/moto-install \
                     installs botocore; KESTREL_REQUIRE_MOTO=1 makes this a failure)"
                );
                return;
            }
            Err(missing) => panic!("{REQUIRE_VARIABLE} is set but {missing}"),
        };
        assert!(expected.contains_key("authorization"), "{expected:?}");
        assert_eq!(kestrel(case), expected, "{}", case.operation);
    }
}

#[test]
fn the_signed_headers_carry_the_target_and_content_type() {
    let case = Case {
        endpoint: "https://secretsmanager.us-east-1.amazonaws.com",
        region: "us-east-1",
        operation: "ListSecrets",
        body: "{}",
        token: None,
    };
    let unsigned = Unsigned {
        endpoint: case.endpoint,
        region: case.region,
        operation: case.operation,
        body: case.body.as_bytes(),
    };
    let headers: BTreeMap<String, String> = signed_headers(
        unsigned,
        &credentials(None),
        SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME),
    )
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(headers["x-amz-target"], "secretsmanager.ListSecrets");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(headers["x-amz-date"], "20150830T123600Z");
    assert!(headers["authorization"].starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request"
    ));
}
