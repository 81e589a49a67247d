use super::*;

#[test]
fn builder_output_parses_back() {
    let mut builder = BatchBuilder::new();
    builder.push(&Record {
        timestamp: 5,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[("h", b"x")],
    });
    let view = BatchView::parse_unstamped(Bytes::from(builder.finish())).expect("parses");
    view.validate_records().expect("valid");
    let records: Vec<_> = view.records().collect::<Result<_, _>>().expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, Some(&b"k"[..]));
    assert_eq!(
        records[0].headers().collect::<Vec<_>>(),
        vec![("h", &b"x"[..])]
    );
}
