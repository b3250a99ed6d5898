//! Runs the quickstart end to end and checks the attribution it prints.

use serde_json::json;

#[test]
fn quickstart_attributes_the_stream() {
    let mut output = Vec::new();
    let summary = quickstart::run(&mut output).unwrap();
    let text = String::from_utf8(output).unwrap();

    // 2 early sign-ups + 3 + 2 + 3 + 1 user events + 2 from erin.
    assert_eq!(summary.events, 13, "{text}");

    let counts: Vec<(&str, u64, u64)> = summary.companies.iter().map(|c| (c.id.as_str(), c.events, c.unique_users)).collect();
    assert_eq!(counts, vec![("1042", 1, 1), ("acme", 5, 2), ("globex", 5, 2), ("initech", 1, 1)], "{text}");

    let acme = summary.companies.iter().find(|c| c.id == "acme").unwrap();
    assert_eq!(acme.profile, json!({"$name": "Acme Corp", "plan": "enterprise", "seats": 120, "regions": ["eu", "us"]}));

    let reasons: Vec<(&str, &str, &str)> =
        summary.not_attributed.iter().map(|n| (n.event.as_str(), n.distinct_id.as_str(), n.reason.as_str())).collect();
    assert_eq!(
        reasons,
        vec![("Signed Up", "alice", "before_set_up"), ("Signed Up", "bob", "before_set_up"), ("Dashboard Viewed", "erin", "empty_value")],
        "{text}"
    );
    assert_eq!(summary.warnings.len(), 1);
    assert!(summary.warnings[0].1.contains("\"1042\""));

    assert!(text.contains("company_id = \"acme\" (Acme Corp)\n  attributed events: 5\n  unique users:      2"), "{text}");
    assert!(text.contains("Events not attributed to a company (3):"), "{text}");
}
