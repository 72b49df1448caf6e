//! Fuzzes the onvif parsers (WS-Discovery ProbeMatches, the GetDeviceInformation HTTP reply,
//! the XAddr filter): any bytes must give a value or a ParseError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::discovery::onvif;

fuzz_target!(|data: &[u8]| {
    if let Ok(matched) = onvif::parse_probe_matches(data) {
        let _ = onvif::identify_probe_match(&matched);
        let _ = onvif::device_service(&matched.xaddrs, std::net::IpAddr::from([127, 0, 0, 1]));
    }
    let _ = onvif::parse_device_information(data);
});
