//! Signature test vectors computed independently of the crate, with Python's standard library.
//! Each expected value is hard-coded next to the one-liner that produced it.

use otakumori::webhooks::{clerk, printify, stripe};

// ---------------------------------------------------------------------------------------------
// svix (Clerk)
// ---------------------------------------------------------------------------------------------

/// `base64("otakumori-test-svix-key-0123456789")`, prefixed with `whsec_`.
const SVIX_SECRET: &str = "whsec_b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ==";
const SVIX_ID: &str = "msg_2Xyz0tkm3jtFHzMNDwN0AbCdEf";
const SVIX_TS: i64 = 1_735_689_600;
const SVIX_BODY: &[u8] = br#"{"type":"user.created","data":{"id":"user_1"}}"#;

/// python3 -c 'import hmac,hashlib,base64;k=base64.b64decode("b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ==");print(base64.b64encode(hmac.new(k,b"msg_2Xyz0tkm3jtFHzMNDwN0AbCdEf.1735689600.{\"type\":\"user.created\",\"data\":{\"id\":\"user_1\"}}",hashlib.sha256).digest()).decode())'
const SVIX_EXPECTED: &str = "oYILqDfBBowfD+hLWbZJxIlbcWLU0CL7FERQ0SHfOxs=";

/// Same content signed with the key `other-key` (a rotated-out secret):
/// python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"other-key",b"msg_2Xyz0tkm3jtFHzMNDwN0AbCdEf.1735689600.{\"type\":\"user.created\",\"data\":{\"id\":\"user_1\"}}",hashlib.sha256).digest()).decode())'
const SVIX_OTHER_KEY_SIG: &str = "MnQ6dmQ9W26EpAxo9Kymy01p3ruxCoqiaz5q7oG2w2U=";

fn svix_secret() -> clerk::SvixSecret {
    clerk::SvixSecret::parse(SVIX_SECRET).unwrap()
}

#[test]
fn svix_sign_matches_python() {
    assert_eq!(
        clerk::signature(&svix_secret(), SVIX_ID, SVIX_TS, SVIX_BODY),
        SVIX_EXPECTED
    );
    assert_eq!(
        clerk::sign(&svix_secret(), SVIX_ID, SVIX_TS, SVIX_BODY),
        format!("v1,{SVIX_EXPECTED}")
    );
}

#[test]
fn svix_secret_without_prefix_or_padding_is_the_same_key() {
    for s in [
        "b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ==",
        "whsec_b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ",
    ] {
        let k = clerk::SvixSecret::parse(s).unwrap();
        assert_eq!(
            clerk::signature(&k, SVIX_ID, SVIX_TS, SVIX_BODY),
            SVIX_EXPECTED
        );
    }
}

/// Key given as raw bytes `00 01 02` (`whsec_AAEC`), empty body:
/// python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"\x00\x01\x02",b"id.0.",hashlib.sha256).digest()).decode())'
#[test]
fn svix_binary_key_and_empty_body() {
    let k = clerk::SvixSecret::parse("whsec_AAEC").unwrap();
    let expected = "ZmQkYS45uj7wDuIEwewS/NUIAj6t3ZchvkN1hYhhBi8=";
    assert_eq!(clerk::signature(&k, "id", 0, b""), expected);
    let raw = clerk::SvixSecret::from_key(vec![0u8, 1, 2]);
    assert_eq!(
        clerk::verify(&raw, "id", "0", &format!("v1,{expected}"), b"", 0),
        Ok(())
    );
}

#[test]
fn svix_valid() {
    let sig = format!("v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689600",
            &sig,
            SVIX_BODY,
            SVIX_TS
        ),
        Ok(())
    );
}

#[test]
fn svix_tampered_body() {
    let sig = format!("v1,{SVIX_EXPECTED}");
    let tampered = br#"{"type":"user.created","data":{"id":"user_2"}}"#;
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689600",
            &sig,
            tampered,
            SVIX_TS
        ),
        Err(clerk::SvixError::SignatureMismatch)
    );
}

#[test]
fn svix_tampered_id_or_timestamp() {
    let sig = format!("v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            "msg_other",
            "1735689600",
            &sig,
            SVIX_BODY,
            SVIX_TS
        ),
        Err(clerk::SvixError::SignatureMismatch)
    );
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689601",
            &sig,
            SVIX_BODY,
            SVIX_TS
        ),
        Err(clerk::SvixError::SignatureMismatch)
    );
}

#[test]
fn svix_wrong_secret() {
    let wrong = clerk::SvixSecret::from_key(b"other-key".to_vec());
    let sig = format!("v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(&wrong, SVIX_ID, "1735689600", &sig, SVIX_BODY, SVIX_TS),
        Err(clerk::SvixError::SignatureMismatch)
    );
    // and the other key's own signature verifies only under that key
    let other_sig = format!("v1,{SVIX_OTHER_KEY_SIG}");
    assert_eq!(
        clerk::verify(
            &wrong,
            SVIX_ID,
            "1735689600",
            &other_sig,
            SVIX_BODY,
            SVIX_TS
        ),
        Ok(())
    );
}

#[test]
fn svix_missing_headers() {
    let s = svix_secret();
    let sig = format!("v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(&s, "", "1735689600", &sig, SVIX_BODY, SVIX_TS),
        Err(clerk::SvixError::MissingHeader("svix-id"))
    );
    assert_eq!(
        clerk::verify(&s, SVIX_ID, "", &sig, SVIX_BODY, SVIX_TS),
        Err(clerk::SvixError::MissingHeader("svix-timestamp"))
    );
    assert_eq!(
        clerk::verify(&s, SVIX_ID, "1735689600", " ", SVIX_BODY, SVIX_TS),
        Err(clerk::SvixError::MissingHeader("svix-signature"))
    );
}

#[test]
fn svix_stale_and_future_timestamps() {
    let s = svix_secret();
    let sig = format!("v1,{SVIX_EXPECTED}");
    // exactly at the 5-minute edge, both directions: accepted
    for now in [SVIX_TS + 300, SVIX_TS - 300] {
        assert_eq!(
            clerk::verify(&s, SVIX_ID, "1735689600", &sig, SVIX_BODY, now),
            Ok(())
        );
    }
    assert_eq!(
        clerk::verify(&s, SVIX_ID, "1735689600", &sig, SVIX_BODY, SVIX_TS + 301),
        Err(clerk::SvixError::TimestampOutOfTolerance {
            skew_secs: -301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        clerk::verify(&s, SVIX_ID, "1735689600", &sig, SVIX_BODY, SVIX_TS - 301),
        Err(clerk::SvixError::TimestampOutOfTolerance {
            skew_secs: 301,
            tolerance_secs: 300
        })
    );
}

#[test]
fn svix_multi_signature_second_entry_valid() {
    let header = format!("v1,{SVIX_OTHER_KEY_SIG} v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689600",
            &header,
            SVIX_BODY,
            SVIX_TS
        ),
        Ok(())
    );
    // non-v1 entries and junk are skipped
    let header = format!("v1a,{SVIX_EXPECTED} junk v1,{SVIX_EXPECTED}");
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689600",
            &header,
            SVIX_BODY,
            SVIX_TS
        ),
        Ok(())
    );
    // only invalid entries
    let header = format!("v1,{SVIX_OTHER_KEY_SIG} v1,AAAA");
    assert_eq!(
        clerk::verify(
            &svix_secret(),
            SVIX_ID,
            "1735689600",
            &header,
            SVIX_BODY,
            SVIX_TS
        ),
        Err(clerk::SvixError::SignatureMismatch)
    );
}

// ---------------------------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------------------------

const STRIPE_SECRET: &str = "whsec_test_otakumori_stripe";
const STRIPE_TS: i64 = 1_735_689_600;
const STRIPE_BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

/// The secret is used verbatim (not base64-decoded):
/// python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test_otakumori_stripe",b"1735689600.{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}",hashlib.sha256).hexdigest())'
const STRIPE_EXPECTED: &str = "adb474a8377686f98a9a421a0b2b019f44491316c26150d0cd92ad1b01e60186";

/// Same payload under another (rolled) secret:
/// python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_rotated_old",b"1735689600.{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}",hashlib.sha256).hexdigest())'
const STRIPE_OTHER_SIG: &str = "aa5458a9b6ade40e6ec17a42cea3e9007bef032fae53ca3a420ea055599acf9f";

fn stripe_secret() -> stripe::StripeSecret {
    stripe::StripeSecret::new(STRIPE_SECRET)
}

#[test]
fn stripe_sign_matches_python() {
    assert_eq!(
        stripe::signature(&stripe_secret(), STRIPE_TS, STRIPE_BODY),
        STRIPE_EXPECTED
    );
    assert_eq!(
        stripe::sign(&stripe_secret(), STRIPE_TS, STRIPE_BODY),
        format!("t=1735689600,v1={STRIPE_EXPECTED}")
    );
}

#[test]
fn stripe_valid() {
    let h = format!("t=1735689600,v1={STRIPE_EXPECTED}");
    assert_eq!(
        stripe::verify(&stripe_secret(), &h, STRIPE_BODY, STRIPE_TS),
        Ok(STRIPE_TS)
    );
    // upper-case hex and a trailing v0 are fine
    let h = format!(
        "t=1735689600,v1={},v0=deadbeef",
        STRIPE_EXPECTED.to_uppercase()
    );
    assert_eq!(
        stripe::verify(&stripe_secret(), &h, STRIPE_BODY, STRIPE_TS),
        Ok(STRIPE_TS)
    );
}

#[test]
fn stripe_tampered_body() {
    let h = format!("t=1735689600,v1={STRIPE_EXPECTED}");
    assert_eq!(
        stripe::verify(
            &stripe_secret(),
            &h,
            br#"{"id":"evt_2","type":"payment_intent.succeeded"}"#,
            STRIPE_TS
        ),
        Err(stripe::StripeError::SignatureMismatch)
    );
}

#[test]
fn stripe_wrong_secret() {
    let h = format!("t=1735689600,v1={STRIPE_EXPECTED}");
    assert_eq!(
        stripe::verify(
            &stripe::StripeSecret::new("whsec_rotated_old"),
            &h,
            STRIPE_BODY,
            STRIPE_TS
        ),
        Err(stripe::StripeError::SignatureMismatch)
    );
}

#[test]
fn stripe_missing_header_parts() {
    let s = stripe_secret();
    assert_eq!(
        stripe::verify(&s, "", STRIPE_BODY, STRIPE_TS),
        Err(stripe::StripeError::MissingHeader)
    );
    assert_eq!(
        stripe::verify(&s, &format!("v1={STRIPE_EXPECTED}"), STRIPE_BODY, STRIPE_TS),
        Err(stripe::StripeError::InvalidTimestamp)
    );
    assert_eq!(
        stripe::verify(&s, "t=1735689600,v0=abcd", STRIPE_BODY, STRIPE_TS),
        Err(stripe::StripeError::NoV1Signature)
    );
}

#[test]
fn stripe_stale_timestamp() {
    let s = stripe_secret();
    let h = format!("t=1735689600,v1={STRIPE_EXPECTED}");
    assert_eq!(
        stripe::verify(&s, &h, STRIPE_BODY, STRIPE_TS + 300),
        Ok(STRIPE_TS)
    );
    assert_eq!(
        stripe::verify(&s, &h, STRIPE_BODY, STRIPE_TS + 301),
        Err(stripe::StripeError::TimestampOutOfTolerance {
            skew_secs: -301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        stripe::verify(&s, &h, STRIPE_BODY, STRIPE_TS - 301),
        Err(stripe::StripeError::TimestampOutOfTolerance {
            skew_secs: 301,
            tolerance_secs: 300
        })
    );
    // a custom tolerance
    assert_eq!(
        stripe::verify_with_tolerance(&s, &h, STRIPE_BODY, STRIPE_TS + 1000, 1000),
        Ok(STRIPE_TS)
    );
}

#[test]
fn stripe_multi_signature_second_entry_valid() {
    let h = format!("t=1735689600,v1={STRIPE_OTHER_SIG},v1={STRIPE_EXPECTED}");
    assert_eq!(
        stripe::verify(&stripe_secret(), &h, STRIPE_BODY, STRIPE_TS),
        Ok(STRIPE_TS)
    );
    let h = format!("t=1735689600,v1={STRIPE_OTHER_SIG},v1=00ff");
    assert_eq!(
        stripe::verify(&stripe_secret(), &h, STRIPE_BODY, STRIPE_TS),
        Err(stripe::StripeError::SignatureMismatch)
    );
}

// ---------------------------------------------------------------------------------------------
// Printify
// ---------------------------------------------------------------------------------------------

const PRINTIFY_SECRET: &str = "otakumori-printify-secret";
const PRINTIFY_BODY: &[u8] =
    br#"{"id":"653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff","type":"product:publish:started"}"#;

/// python3 -c 'import hmac,hashlib;print(hmac.new(b"otakumori-printify-secret",b"{\"id\":\"653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff\",\"type\":\"product:publish:started\"}",hashlib.sha256).hexdigest())'
const PRINTIFY_EXPECTED: &str = "2fbf1bf4b6fc0ec6375b1e14db03e78729fd5d03a810eb9d6fd72425a0075a25";

fn printify_secret() -> printify::PrintifySecret {
    printify::PrintifySecret::new(PRINTIFY_SECRET)
}

#[test]
fn printify_sign_matches_python() {
    assert_eq!(
        printify::signature(&printify_secret(), PRINTIFY_BODY),
        PRINTIFY_EXPECTED
    );
    assert_eq!(
        printify::sign(&printify_secret(), PRINTIFY_BODY),
        format!("sha256={PRINTIFY_EXPECTED}")
    );
}

#[test]
fn printify_with_and_without_prefix() {
    let s = printify_secret();
    assert_eq!(
        printify::verify(&s, &format!("sha256={PRINTIFY_EXPECTED}"), PRINTIFY_BODY),
        Ok(())
    );
    assert_eq!(
        printify::verify(&s, PRINTIFY_EXPECTED, PRINTIFY_BODY),
        Ok(())
    );
}

#[test]
fn printify_tampered_body_and_wrong_secret() {
    let h = format!("sha256={PRINTIFY_EXPECTED}");
    assert_eq!(
        printify::verify(&printify_secret(), &h, b"{}"),
        Err(printify::PrintifyError::SignatureMismatch)
    );
    assert_eq!(
        printify::verify(
            &printify::PrintifySecret::new("not-the-secret"),
            &h,
            PRINTIFY_BODY
        ),
        Err(printify::PrintifyError::SignatureMismatch)
    );
}

#[test]
fn printify_missing_or_malformed_header() {
    let s = printify_secret();
    assert_eq!(
        printify::verify(&s, "", PRINTIFY_BODY),
        Err(printify::PrintifyError::MissingHeader)
    );
    assert_eq!(
        printify::verify(&s, "sha256=", PRINTIFY_BODY),
        Err(printify::PrintifyError::SignatureMismatch)
    );
    assert_eq!(
        printify::verify(&s, "sha1=abcd", PRINTIFY_BODY),
        Err(printify::PrintifyError::MalformedSignature)
    );
}
