//! Name rules at their exact limits, and the small value types a user meets in messages:
//! error codes and timestamps.

use std::time::Duration;

use ferry_protocol::limits::{MAX_NAME_COMPONENT_LEN, MAX_NAME_DEPTH, MAX_NAME_LEN};
use ferry_protocol::{ErrorCode, NameError, ProtocolError, Timestamp, validate_name};

#[test]
fn a_name_of_exactly_the_longest_length_is_accepted() {
    // components under the component limit, joined to exactly MAX_NAME_LEN bytes
    let mut parts = vec!["x".repeat(127); 7];
    parts.push("x".repeat(MAX_NAME_LEN - 7 * 128));
    let name = parts.join("/");
    assert_eq!(name.len(), MAX_NAME_LEN);
    assert_eq!(validate_name(&name), Ok(()));
    let longer = format!("{name}x");
    assert_eq!(
        validate_name(&longer),
        Err(NameError::TooLong {
            len: MAX_NAME_LEN + 1
        })
    );
}

#[test]
fn a_component_of_exactly_the_longest_length_is_accepted() {
    let name = format!("a/{}", "y".repeat(MAX_NAME_COMPONENT_LEN));
    assert_eq!(validate_name(&name), Ok(()));
}

#[test]
fn a_name_of_exactly_the_deepest_depth_is_accepted() {
    let name = vec!["d"; MAX_NAME_DEPTH].join("/");
    assert_eq!(validate_name(&name), Ok(()));
    let deeper = vec!["d"; MAX_NAME_DEPTH + 1].join("/");
    assert_eq!(validate_name(&deeper), Err(NameError::TooDeep));
}

#[test]
fn an_error_code_shows_as_its_phrase() {
    assert_eq!(ErrorCode::NotFound.to_string(), "no such file");
    assert_eq!(ErrorCode::Other(999).to_string(), "unknown error");
    let error = ProtocolError::Peer {
        code: ErrorCode::DiskFull,
        message: "try later".into(),
    };
    assert_eq!(
        error.to_string(),
        "the peer reported an error: disk full: try later"
    );
}

#[test]
fn a_timestamp_gives_back_its_microseconds_and_measures_time_since_another() {
    let t = Timestamp::from_micros(5_000_007);
    assert_eq!(t.as_micros(), 5_000_007);
    assert_eq!(
        t.saturating_since(Timestamp::from_micros(2_000_000)),
        Duration::from_micros(3_000_007)
    );
    assert_eq!(
        Timestamp::ZERO + Duration::from_millis(1500),
        Timestamp::from_micros(1_500_000)
    );
}
