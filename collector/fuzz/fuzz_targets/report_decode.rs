//! Feeds arbitrary bytes to what the Inventory.Report handler does with a gRPC message body:
//! prost decodes a `tillsyn.v1.ReportRequest`, then `tillsyn_intake::report::validate` checks
//! it. A message that decodes must also survive a round trip (encode, decode, equal), or the
//! collector could store something other than what the agent meant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tillsyn_proto::v1::ReportRequest;

fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = ReportRequest::decode(bytes) else {
        return;
    };
    let _ = tillsyn_intake::report::validate("fuzz-agent", &request);

    let encoded = request.encode_to_vec();
    // A message prost just decoded must decode again from its own encoding; failing is the finding.
    let again = ReportRequest::decode(encoded.as_slice()).expect("re-encoded report decodes");
    assert_eq!(request, again, "report changed in an encode/decode round trip");
});
