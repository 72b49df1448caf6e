//! OPC UA endpoint discovery: Hello, OpenSecureChannel with SecurityPolicy None, GetEndpoints,
//! CloseSecureChannel. Reports each endpoint's SecurityMode, SecurityPolicyUri and user token
//! types; no session is created, nothing is browsed, read or written.
//!
//! Follows OPC 10000-6 (UA Part 6: Mappings) §7.1 (UA Connection Protocol) and §6.7 (UA Secure
//! Conversation), and OPC 10000-4 §5.4.2 (GetEndpoints), §7.28/7.29 (request/response
//! headers), §7.14 (EndpointDescription); tested against asyncua 2.1.
//!
//! ```text
//! every message: type[3] ("HEL","ACK","OPN","MSG","CLO","ERR") chunk type u8 size u32 LE
//! HEL   version u32, receive buffer u32 (8192), send buffer u32 (8192), max message u32 (1 MiB),
//!       max chunks u32 (128), endpoint url String
//! OPN   channel id u32 | policy uri String, sender cert ByteString(-1), receiver thumbprint ByteString(-1)
//!       | sequence number u32, request id u32 | NodeId i=446 | RequestHeader
//!       | client protocol version u32, request type u32 (0 issue), security mode u32 (1 None),
//!         client nonce ByteString, requested lifetime u32
//! MSG   channel id u32, token id u32 | sequence number u32, request id u32 | NodeId i=428 | RequestHeader
//!       | endpoint url String, locale ids [-1], profile uris [-1]
//! reply EndpointDescription[]: url, ApplicationDescription (uri, product uri, name LocalizedText,
//!       type, gateway, discovery profile, discovery urls[]), server certificate, SecurityMode u32,
//!       SecurityPolicyUri, UserTokenPolicy[] (policy id, token type u32, ...), transport profile, level u8
//! String/ByteString: i32 LE length (-1 = null) + bytes; NodeId: encoding byte + per-encoding id
//! ```
//!
//! Chunks (§6.7.2): a response larger than our receive buffer arrives as MSG chunks of type
//! 'C' (more follow), ending with 'F' (final) or 'A' (abort: error u32, reason String). Each
//! chunk repeats channel id, token id, sequence number and request id (24 bytes in all with
//! the message header); [`Reassembly`] joins the bodies of one request id into a single 'F'
//! message, refusing more than [`MAX_CHUNK_COUNT`] chunks, [`MAX_MESSAGE_SIZE`] bytes, or a
//! chunk above the receive buffer we announced. The Hello announces the smallest buffer the
//! spec allows (8192, §7.1.2.3), so a server with many endpoints really chunks its reply.
//!
//! Verdicts: an endpoint with SecurityMode None or Sign leaves data readable, so `transit` is
//! plaintext unless every endpoint is SignAndEncrypt; `auth` is none if any endpoint offers the
//! Anonymous token type. Hand-written because an OPC UA client stack (with sessions, writes and
//! method calls) is far more than three fixed messages and a bounded decoder.

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{Frame, ProbeError, TcpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "opcua";

const POLICY_NONE: &str = "http://opcfoundation.org/UA/SecurityPolicy#None";
/// Binary encoding ids of the responses we accept.
const OPEN_SECURE_CHANNEL_RESPONSE: u32 = 449;
const GET_ENDPOINTS_RESPONSE: u32 = 431;
const SERVICE_FAULT: u32 = 397;
/// Nesting limit for DiagnosticInfo, which may contain itself.
const MAX_DIAGNOSTIC_DEPTH: u8 = 4;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const OPEN_SECURE_CHANNEL_REQUEST: u16 = 446;
const GET_ENDPOINTS_REQUEST: u16 = 428;
const CLOSE_SECURE_CHANNEL_REQUEST: u16 = 452;
/// Our receive and send buffer: the minimum Part 6 §7.1.2.3 allows. Requests are far smaller;
/// replies larger than this must come in chunks, which bounds every single read.
pub const BUFFER_SIZE: u32 = 8192;
/// Largest response accepted across all its chunks (announced as MaxMessageSize).
pub const MAX_MESSAGE_SIZE: u32 = 1024 * 1024;
/// Most chunks accepted per response (announced as MaxChunkCount): a full 1 MiB message.
pub const MAX_CHUNK_COUNT: u32 = MAX_MESSAGE_SIZE / BUFFER_SIZE;

fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&i32::try_from(s.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
    }
}

/// A four-byte NodeId in namespace 0.
fn put_type_id(out: &mut Vec<u8>, id: u16) {
    out.extend_from_slice(&[0x01, 0x00]);
    out.extend_from_slice(&id.to_le_bytes());
}

/// RequestHeader: null token, no timestamp, `handle`, no diagnostics, no audit id, 5 s hint.
fn put_request_header(out: &mut Vec<u8>, handle: u32) {
    out.extend_from_slice(&[0x00, 0x00]); // authentication token: null NodeId
    out.extend_from_slice(&0i64.to_le_bytes()); // timestamp
    out.extend_from_slice(&handle.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // return diagnostics
    put_string(out, None); // audit entry id
    out.extend_from_slice(&5000u32.to_le_bytes()); // timeout hint, ms
    out.extend_from_slice(&[0x00, 0x00, 0x00]); // additional header: null ExtensionObject
}

fn message(kind: [u8; 3], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&kind);
    out.push(b'F');
    out.extend_from_slice(
        &u32::try_from(8 + body.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(body);
    out
}

/// HEL for `endpoint_url`.
pub fn hello(endpoint_url: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for value in [
        0,
        BUFFER_SIZE,
        BUFFER_SIZE,
        MAX_MESSAGE_SIZE,
        MAX_CHUNK_COUNT,
    ] {
        body.extend_from_slice(&value.to_le_bytes()); // version, buffers, max message, max chunks
    }
    put_string(&mut body, Some(endpoint_url));
    message(*b"HEL", &body)
}

/// OPN asking for a SecurityPolicy None channel.
pub fn open_secure_channel() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // secure channel id: not yet assigned
    put_string(&mut body, Some(POLICY_NONE));
    body.extend_from_slice(&(-1i32).to_le_bytes()); // sender certificate: null
    body.extend_from_slice(&(-1i32).to_le_bytes()); // receiver thumbprint: null
    body.extend_from_slice(&1u32.to_le_bytes()); // sequence number
    body.extend_from_slice(&1u32.to_le_bytes()); // request id
    put_type_id(&mut body, OPEN_SECURE_CHANNEL_REQUEST);
    put_request_header(&mut body, 1);
    body.extend_from_slice(&0u32.to_le_bytes()); // client protocol version
    body.extend_from_slice(&0u32.to_le_bytes()); // request type: issue
    body.extend_from_slice(&1u32.to_le_bytes()); // security mode: None
    body.extend_from_slice(&0i32.to_le_bytes()); // client nonce: empty
    body.extend_from_slice(&60_000u32.to_le_bytes()); // requested lifetime, ms
    message(*b"OPN", &body)
}

fn symmetric(
    kind: [u8; 3],
    channel: Channel,
    sequence: u32,
    type_id: u16,
    tail: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&channel.id.to_le_bytes());
    body.extend_from_slice(&channel.token.to_le_bytes());
    body.extend_from_slice(&sequence.to_le_bytes());
    body.extend_from_slice(&sequence.to_le_bytes()); // request id = sequence number
    put_type_id(&mut body, type_id);
    put_request_header(&mut body, sequence);
    tail(&mut body);
    message(kind, &body)
}

/// GetEndpoints on an open channel.
pub fn get_endpoints(channel: Channel, endpoint_url: &str) -> Vec<u8> {
    symmetric(*b"MSG", channel, 2, GET_ENDPOINTS_REQUEST, |body| {
        put_string(body, Some(endpoint_url));
        body.extend_from_slice(&(-1i32).to_le_bytes()); // locale ids: null array
        body.extend_from_slice(&(-1i32).to_le_bytes()); // profile uris: null array
    })
}

/// CloseSecureChannel.
pub fn close_secure_channel(channel: Channel) -> Vec<u8> {
    symmetric(*b"CLO", channel, 3, CLOSE_SECURE_CHANNEL_REQUEST, |_| {})
}
// END REQUEST BUILDERS

/// A secure channel's id and token, from the OPN reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    /// SecureChannelId.
    pub id: u32,
    /// TokenId.
    pub token: u32,
}

/// The requests a probe sends (for `--dry-run`; channel id and token are the server's, shown 0).
pub fn plan(endpoint_url: &str) -> Vec<(&'static str, Vec<u8>)> {
    let channel = Channel::default();
    vec![
        ("Hello", hello(endpoint_url)),
        (
            "OpenSecureChannel (SecurityPolicy None)",
            open_secure_channel(),
        ),
        ("GetEndpoints", get_endpoints(channel, endpoint_url)),
        ("CloseSecureChannel", close_secure_channel(channel)),
    ]
}

/// Framing: message size at bytes 4..8.
pub fn framing(buf: &[u8]) -> Frame {
    match buf {
        [a, b, c, _, s0, s1, s2, s3, ..] => {
            if ![a, b, c].iter().all(|x| x.is_ascii_uppercase()) {
                return Frame::Invalid;
            }
            let size = u32::from_le_bytes([*s0, *s1, *s2, *s3]);
            usize::try_from(size).map_or(Frame::Invalid, |n| Frame::Length(n.max(8)))
        }
        _ => Frame::Incomplete,
    }
}

/// Reads a String/ByteString; null and empty both become an empty slice.
fn bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], ParseError> {
    let len = r.i32_le()?;
    match usize::try_from(len) {
        Ok(len) => r.take(len),
        Err(_) => Ok(&[]),
    }
}

fn string(r: &mut Reader<'_>) -> Result<String, ParseError> {
    bytes(r).map(text)
}

/// Reads an array length; null (-1) is empty. Elements are read one by one, so a lying count
/// can only end in Truncated, never in a large allocation.
fn array_len(r: &mut Reader<'_>) -> Result<usize, ParseError> {
    Ok(usize::try_from(r.i32_le()?).unwrap_or(0))
}

/// Reads a NodeId, returning its numeric id (0 for non-numeric ids).
fn node_id(r: &mut Reader<'_>) -> Result<u32, ParseError> {
    let encoding = r.u8()?;
    let id = match encoding & 0x0F {
        0 => u32::from(r.u8()?),
        1 => {
            r.skip(1)?;
            u32::from(r.u16_le()?)
        }
        2 => {
            r.skip(2)?;
            r.u32_le()?
        }
        3 | 5 => {
            r.skip(2)?;
            bytes(r)?;
            0
        }
        4 => {
            r.skip(18)?;
            0
        }
        other => {
            return Err(ParseError::Unexpected {
                field: "NodeId encoding",
                value: u64::from(other),
            });
        }
    };
    if encoding & 0x80 != 0 {
        bytes(r)?; // namespace uri
    }
    if encoding & 0x40 != 0 {
        r.skip(4)?; // server index
    }
    Ok(id)
}

fn diagnostic_info(r: &mut Reader<'_>, depth: u8) -> Result<(), ParseError> {
    if depth > MAX_DIAGNOSTIC_DEPTH {
        return Err(ParseError::Unexpected {
            field: "DiagnosticInfo nesting",
            value: u64::from(depth),
        });
    }
    let mask = r.u8()?;
    for bit in [0x01, 0x02, 0x04, 0x08] {
        if mask & bit != 0 {
            r.skip(4)?;
        }
    }
    if mask & 0x10 != 0 {
        bytes(r)?;
    }
    if mask & 0x20 != 0 {
        r.skip(4)?;
    }
    if mask & 0x40 != 0 {
        diagnostic_info(r, depth + 1)?;
    }
    Ok(())
}

/// Skips a ResponseHeader, failing on a bad ServiceResult.
fn response_header(r: &mut Reader<'_>) -> Result<(), ParseError> {
    r.skip(8 + 4)?; // timestamp, request handle
    let status = r.u32_le()?;
    diagnostic_info(r, 0)?;
    for _ in 0..array_len(r)? {
        bytes(r)?; // string table
    }
    node_id(r)?; // additional header type
    match r.u8()? {
        0 => {}
        _ => {
            bytes(r)?;
        }
    }
    if status & 0x8000_0000 != 0 {
        return Err(ParseError::Refused(format!(
            "OPC UA service result {status:#010x}"
        )));
    }
    Ok(())
}

fn expect_kind(frame: &[u8], kind: [u8; 3]) -> Result<Reader<'_>, ParseError> {
    let mut r = Reader::new(frame);
    let got = r.take(3)?;
    let chunk = r.u8()?;
    r.skip(4)?;
    if got == b"ERR" {
        let code = r.u32_le()?;
        let reason = string(&mut r).unwrap_or_default();
        return Err(ParseError::Refused(format!(
            "OPC UA error {code:#010x} {reason}"
        )));
    }
    if got != kind || chunk != b'F' {
        return Err(ParseError::Unexpected {
            field: "OPC UA message type",
            value: u64::from(got[0]),
        });
    }
    Ok(r)
}

/// Checks an ACK.
pub fn parse_ack(frame: &[u8]) -> Result<(), ParseError> {
    expect_kind(frame, *b"ACK").map(|_| ())
}

fn body_type(r: &mut Reader<'_>, want: u32) -> Result<(), ParseError> {
    match node_id(r)? {
        id if id == want => response_header(r),
        SERVICE_FAULT => {
            response_header(r)?;
            Err(ParseError::Refused("OPC UA ServiceFault".to_string()))
        }
        other => Err(ParseError::Unexpected {
            field: "OPC UA response type",
            value: u64::from(other),
        }),
    }
}

/// Parses the OPN reply into the channel id and token.
pub fn parse_open(frame: &[u8]) -> Result<Channel, ParseError> {
    let mut r = expect_kind(frame, *b"OPN")?;
    r.skip(4)?; // channel id (also in the token)
    bytes(&mut r)?; // policy uri
    bytes(&mut r)?; // sender certificate
    bytes(&mut r)?; // receiver thumbprint
    r.skip(8)?; // sequence header
    body_type(&mut r, OPEN_SECURE_CHANNEL_RESPONSE)?;
    r.skip(4)?; // server protocol version
    let id = r.u32_le()?;
    let token = r.u32_le()?;
    Ok(Channel { id, token })
}

/// One endpoint as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// EndpointUrl.
    pub url: String,
    /// ApplicationName text.
    pub application_name: String,
    /// ProductUri.
    pub product_uri: String,
    /// ApplicationUri.
    pub application_uri: String,
    /// 1 None, 2 Sign, 3 SignAndEncrypt.
    pub security_mode: u32,
    /// SecurityPolicyUri.
    pub security_policy: String,
    /// UserTokenType of each policy: 0 anonymous, 1 user name, 2 certificate, 3 issued.
    pub token_types: Vec<u32>,
}

fn endpoint(r: &mut Reader<'_>) -> Result<Endpoint, ParseError> {
    let url = string(r)?;
    let application_uri = string(r)?;
    let product_uri = string(r)?;
    let mask = r.u8()?;
    if mask & 0x01 != 0 {
        bytes(r)?; // locale
    }
    let application_name = if mask & 0x02 != 0 {
        string(r)?
    } else {
        String::new()
    };
    r.skip(4)?; // application type
    bytes(r)?; // gateway server uri
    bytes(r)?; // discovery profile uri
    for _ in 0..array_len(r)? {
        bytes(r)?; // discovery urls
    }
    bytes(r)?; // server certificate
    let security_mode = r.u32_le()?;
    let security_policy = string(r)?;
    let mut token_types = Vec::new();
    for _ in 0..array_len(r)? {
        bytes(r)?; // policy id
        token_types.push(r.u32_le()?);
        for _ in 0..3 {
            bytes(r)?; // issued token type, issuer endpoint, security policy
        }
    }
    bytes(r)?; // transport profile uri
    r.skip(1)?; // security level
    Ok(Endpoint {
        url,
        application_name,
        product_uri,
        application_uri,
        security_mode,
        security_policy,
        token_types,
    })
}

/// Parses a GetEndpoints reply.
pub fn parse_endpoints(frame: &[u8]) -> Result<Vec<Endpoint>, ParseError> {
    let mut r = expect_kind(frame, *b"MSG")?;
    r.skip(8 + 8)?; // security header, sequence header
    body_type(&mut r, GET_ENDPOINTS_RESPONSE)?;
    let mut out = Vec::new();
    for _ in 0..array_len(&mut r)? {
        out.push(endpoint(&mut r)?);
    }
    Ok(out)
}

fn mode_name(mode: u32) -> &'static str {
    match mode {
        1 => "None",
        2 => "Sign",
        3 => "SignAndEncrypt",
        _ => "Invalid",
    }
}

fn token_name(token: u32) -> &'static str {
    match token {
        0 => "Anonymous",
        1 => "UserName",
        2 => "Certificate",
        3 => "IssuedToken",
        _ => "Unknown",
    }
}

/// Turns endpoints into identity fields and verdicts.
pub fn identify(endpoints: &[Endpoint]) -> Result<Identification, ParseError> {
    let first = endpoints.first().ok_or(ParseError::Empty)?;
    let all_encrypted = endpoints.iter().all(|e| e.security_mode == 3);
    let anonymous = endpoints.iter().any(|e| e.token_types.contains(&0));
    let mut id = Identification {
        protocol: PROTOCOL,
        fields: Vec::new(),
        transit: if all_encrypted {
            Transit::Tls
        } else {
            Transit::Plaintext
        },
        auth: if anonymous {
            Auth::None
        } else {
            Auth::Required
        },
        auth_reason: if anonymous {
            "an endpoint offers the Anonymous user token".to_string()
        } else {
            "no endpoint offers the Anonymous user token".to_string()
        },
    };
    id.push(
        Field::Model,
        "application_name",
        first.application_name.clone(),
        "GetEndpoints ApplicationDescription.ApplicationName",
    );
    id.push(
        Field::Detail,
        "product_uri",
        first.product_uri.clone(),
        "GetEndpoints ApplicationDescription.ProductUri",
    );
    id.push(
        Field::Detail,
        "application_uri",
        first.application_uri.clone(),
        "GetEndpoints ApplicationDescription.ApplicationUri",
    );
    for e in endpoints {
        let tokens: Vec<&str> = e.token_types.iter().map(|t| token_name(*t)).collect();
        let value = format!(
            "{} SecurityMode={} SecurityPolicyUri={} UserTokens={}",
            e.url,
            mode_name(e.security_mode),
            e.security_policy,
            tokens.join("|")
        );
        id.push(
            Field::Detail,
            "endpoint",
            value,
            "GetEndpoints EndpointDescription SecurityMode/SecurityPolicyUri/UserIdentityTokens",
        );
    }
    Ok(id)
}

/// Parses a GetEndpoints reply into an identification (what the fuzz target calls).
pub fn parse(frame: &[u8]) -> Result<Identification, ParseError> {
    identify(&parse_endpoints(frame)?)
}

/// Bytes before a MSG chunk's body: message header, channel id, token id, sequence header.
const CHUNK_HEADER: usize = 24;

/// Joins the chunks of one MSG response (Part 6 §6.7.2) into a single final message.
#[derive(Debug, Default)]
pub struct Reassembly {
    /// The first chunk's header, reused for the joined message.
    header: Option<[u8; CHUNK_HEADER]>,
    /// The bodies so far.
    body: Vec<u8>,
    chunks: u32,
}

impl Reassembly {
    /// Adds one chunk (a whole frame, as [`framing`] cut it); returns the joined message once
    /// the final chunk arrived.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, ParseError> {
        let mut r = Reader::new(chunk);
        let kind = r.take(3)?;
        if kind == b"ERR" {
            return expect_kind(chunk, *b"MSG").map(|_| None);
        }
        if kind != b"MSG" {
            return Err(ParseError::Unexpected {
                field: "OPC UA message type",
                value: u64::from(kind[0]),
            });
        }
        let chunk_type = r.u8()?;
        if chunk.len() > BUFFER_SIZE as usize {
            return Err(ParseError::Unexpected {
                field: "OPC UA chunk size above our receive buffer",
                value: chunk.len() as u64,
            });
        }
        let header = chunk
            .get(..CHUNK_HEADER)
            .ok_or_else(|| ParseError::Truncated {
                at: chunk.len(),
                needed: CHUNK_HEADER.saturating_sub(chunk.len()),
            })?;
        let request_id = &header[20..24];
        if let Some(first) = &self.header
            && first[20..24] != *request_id
        {
            return Err(ParseError::Unexpected {
                field: "OPC UA request id of a chunk",
                value: u64::from(u32::from_le_bytes([
                    request_id[0],
                    request_id[1],
                    request_id[2],
                    request_id[3],
                ])),
            });
        }
        self.chunks += 1;
        if self.chunks > MAX_CHUNK_COUNT {
            return Err(ParseError::Unexpected {
                field: "OPC UA chunk count",
                value: u64::from(self.chunks),
            });
        }
        let mut body = Reader::new(&chunk[CHUNK_HEADER..]);
        match chunk_type {
            b'A' => {
                let code = body.u32_le()?;
                let reason = string(&mut body).unwrap_or_default();
                Err(ParseError::Refused(format!(
                    "OPC UA response aborted {code:#010x} {reason}"
                )))
            }
            b'C' | b'F' => {
                let header = self.header.get_or_insert_with(|| {
                    let mut copy = [0u8; CHUNK_HEADER];
                    copy.copy_from_slice(header);
                    copy
                });
                if self.body.len() + body.remaining() > MAX_MESSAGE_SIZE as usize {
                    return Err(ParseError::Unexpected {
                        field: "OPC UA message size across chunks",
                        value: (self.body.len() + body.remaining()) as u64,
                    });
                }
                self.body.extend_from_slice(body.rest());
                if chunk_type == b'C' {
                    return Ok(None);
                }
                let mut message = header.to_vec();
                message[3] = b'F';
                let size = u32::try_from(CHUNK_HEADER + self.body.len()).unwrap_or(u32::MAX);
                message[4..8].copy_from_slice(&size.to_le_bytes());
                message.append(&mut self.body);
                Ok(Some(message))
            }
            other => Err(ParseError::Unexpected {
                field: "OPC UA chunk type",
                value: u64::from(other),
            }),
        }
    }
}

/// Cuts `stream` into frames and reassembles them (what the fuzz target and tests call).
pub fn reassemble(mut stream: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut reassembly = Reassembly::default();
    loop {
        let Frame::Length(len) = framing(stream) else {
            return Err(ParseError::Truncated { at: 0, needed: 8 });
        };
        let frame = stream.get(..len).ok_or_else(|| ParseError::Truncated {
            at: stream.len(),
            needed: len.saturating_sub(stream.len()),
        })?;
        if let Some(message) = reassembly.push(frame)? {
            return Ok(message);
        }
        stream = &stream[len..];
    }
}

/// Reads chunks until one response is complete.
async fn read_message(session: &mut TcpSession<'_>) -> Result<Vec<u8>, ProbeError> {
    let mut reassembly = Reassembly::default();
    loop {
        if let Some(message) = reassembly.push(&session.read_frame(framing).await?)? {
            return Ok(message);
        }
    }
}

/// Runs Hello, OpenSecureChannel, GetEndpoints and CloseSecureChannel.
pub async fn probe(
    session: &mut TcpSession<'_>,
    endpoint_url: &str,
) -> Result<Identification, ProbeError> {
    session.send(&hello(endpoint_url)).await?;
    parse_ack(&session.read_frame(framing).await?)?;
    session.send(&open_secure_channel()).await?;
    let channel = parse_open(&session.read_frame(framing).await?)?;
    session.send(&get_endpoints(channel, endpoint_url)).await?;
    let endpoints = parse_endpoints(&read_message(session).await?)?;
    // Release the channel at once: servers allow only a few, and the PLC behind may be one.
    session.send(&close_secure_channel(channel)).await?;
    Ok(identify(&endpoints)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// A GetEndpoints reply with one None endpoint, anonymous and user-name tokens.
    fn reply() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&431u16.to_le_bytes());
        body.extend_from_slice(&[0; 12]); // timestamp, handle
        body.extend_from_slice(&0u32.to_le_bytes()); // good
        body.push(0); // no diagnostics
        body.extend_from_slice(&(-1i32).to_le_bytes()); // string table
        body.extend_from_slice(&[0, 0, 0]); // additional header
        body.extend_from_slice(&1i32.to_le_bytes());
        put_string(&mut body, Some("opc.tcp://x:4840/"));
        put_string(&mut body, Some("urn:app"));
        put_string(&mut body, Some("urn:product"));
        body.push(0x02);
        put_string(&mut body, Some("Test Server"));
        body.extend_from_slice(&0u32.to_le_bytes());
        for _ in 0..2 {
            put_string(&mut body, None);
        }
        body.extend_from_slice(&(-1i32).to_le_bytes());
        put_string(&mut body, None); // certificate
        body.extend_from_slice(&1u32.to_le_bytes());
        put_string(&mut body, Some(POLICY_NONE));
        body.extend_from_slice(&2i32.to_le_bytes());
        for token in [0u32, 1] {
            put_string(&mut body, Some("p"));
            body.extend_from_slice(&token.to_le_bytes());
            for _ in 0..3 {
                put_string(&mut body, None);
            }
        }
        put_string(&mut body, None);
        body.push(0);
        message(*b"MSG", &body)
    }

    #[test]
    fn parses_endpoints() {
        let frame = reply();
        assert_eq!(framing(&frame), Frame::Length(frame.len()));
        let id = parse(&frame).unwrap();
        assert_eq!(id.transit, Transit::Plaintext);
        assert_eq!(id.auth, Auth::None);
        assert_eq!(id.get(Field::Model).unwrap().value, "Test Server");
        assert!(id.detail("endpoint").unwrap().contains("SecurityMode=None"));
    }

    #[test]
    fn parses_a_real_asyncua_reply() {
        // Captured from asyncua 2.1 (agent/tests/peers/opcua_peer.py "Seed UA" anonymous).
        let frame = include_bytes!("../../fuzz/corpus/opcua/get_endpoints_asyncua.bin");
        let id = parse(frame).unwrap();
        assert_eq!(id.get(Field::Model).unwrap().value, "Seed UA");
        assert_eq!((id.transit, id.auth), (Transit::Plaintext, Auth::None));
        let channel = parse_open(include_bytes!(
            "../../fuzz/corpus/opcua/open_secure_channel_asyncua.bin"
        ))
        .unwrap();
        assert_ne!(channel.id, 0);
        parse_ack(include_bytes!("../../fuzz/corpus/opcua/ack_asyncua.bin")).unwrap();
    }

    /// Splits a final MSG message into chunks of at most `body` body bytes each.
    fn chunked(message: &[u8], body: usize, last: u8) -> Vec<u8> {
        let (header, rest) = message.split_at(CHUNK_HEADER);
        let parts: Vec<&[u8]> = rest.chunks(body).collect();
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let mut chunk = header.to_vec();
            chunk[3] = if i + 1 == parts.len() { last } else { b'C' };
            let size = u32::try_from(CHUNK_HEADER + part.len()).unwrap();
            chunk[4..8].copy_from_slice(&size.to_le_bytes());
            chunk.extend_from_slice(part);
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[test]
    fn chunks_join_into_the_original_message() {
        let message = include_bytes!("../../fuzz/corpus/opcua/get_endpoints_asyncua.bin");
        let stream = chunked(message, 100, b'F');
        assert!(stream.len() > message.len() + 3 * CHUNK_HEADER);
        assert_eq!(reassemble(&stream).unwrap(), message);
        assert_eq!(reassemble(message).unwrap(), message);
        assert_eq!(parse(&reassemble(&stream).unwrap()), parse(message));
        let seed = include_bytes!("../../fuzz/corpus/opcua/get_endpoints_asyncua_chunked.bin");
        assert_eq!(reassemble(seed).unwrap(), message);
    }

    #[test]
    fn abort_mixed_requests_and_too_many_chunks_are_refused() {
        let message = include_bytes!("../../fuzz/corpus/opcua/get_endpoints_asyncua.bin");
        let mut abort = message[..CHUNK_HEADER].to_vec();
        abort[3] = b'A';
        abort.extend_from_slice(&0x8000_0000u32.to_le_bytes());
        put_string(&mut abort, Some("too busy"));
        let size = u32::try_from(abort.len()).unwrap();
        abort[4..8].copy_from_slice(&size.to_le_bytes());
        let stream = [chunked(message, 100, b'C'), abort].concat();
        assert!(
            matches!(reassemble(&stream), Err(ParseError::Refused(r)) if r.contains("too busy"))
        );
        let mut other = chunked(message, 100, b'F');
        other[20] ^= 1; // the first chunk's request id
        assert!(reassemble(&other).is_err());
        let long = chunked(&[&message[..], &[0u8; 200][..]].concat(), 1, b'F');
        assert!(matches!(
            reassemble(&long),
            Err(ParseError::Unexpected {
                field: "OPC UA chunk count",
                ..
            })
        ));
    }

    #[test]
    fn requests_frame_themselves() {
        for (_, request) in plan("opc.tcp://192.0.2.1:4840") {
            assert_eq!(framing(&request), Frame::Length(request.len()));
        }
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&reply(), parse);
        fuzz::no_panic(
            include_bytes!("../../fuzz/corpus/opcua/get_endpoints_asyncua.bin"),
            parse,
        );
        fuzz::no_panic(&reply(), parse_open);
        fuzz::no_panic(&chunked(&reply(), 40, b'F'), reassemble);
    }
}
