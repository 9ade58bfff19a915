//! The subject and issuer of a device's TLS certificate, written as RFC 4514 strings
//! (`CN=IPC,OU=Camera,O=Example Co\, Ltd.,C=JP`), the form Recog's `x509.subject` and
//! `x509.issuer` fingerprints match.
//!
//! Only the two names are read, so this walks the DER of `tbsCertificate` far enough to reach
//! them instead of decoding the whole certificate. The bytes come from whatever answered the TLS
//! handshake, so every length is checked against what is left and nothing is trusted.

/// Why a certificate's names could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// An element's length runs past the end of its parent, or the bytes end inside a header.
    #[error("truncated DER element")]
    Truncated,
    /// An element other than the one the certificate structure puts here.
    #[error("unexpected DER tag 0x{found:02x} where 0x{expected:02x} belongs")]
    UnexpectedTag {
        /// The tag the structure requires.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// A length in a form DER forbids (indefinite, or longer than four bytes).
    #[error("length encoding DER does not allow")]
    BadLength,
    /// An attribute type that is not a well-formed object identifier.
    #[error("malformed object identifier")]
    BadOid,
}

/// The two names of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    /// Who the certificate is for.
    pub subject: String,
    /// Who signed it (the same as the subject when self-signed, as on most devices).
    pub issuer: String,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;

/// Subject and issuer of a DER-encoded X.509 certificate.
pub fn certificate_names(der: &[u8]) -> Result<CertificateNames, X509Error> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    let (_, rest) = expect(rest, INTEGER)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Ok(CertificateNames { subject: name_string(subject)?, issuer: name_string(issuer)? })
}

/// An X.501 `Name` (the content of its SEQUENCE) as an RFC 4514 string, exactly as OpenSSL's
/// `-nameopt RFC2253` writes it: every attribute last-first (so the attributes of a multi-valued
/// RDN also come reversed), `,` between RDNs and `+` inside one, OpenSSL's short names, the bytes of
/// control characters and of non-ASCII text as `\XX`, and attributes of unknown type (or of a
/// value that is no string) as `#` and their DER in hex.
pub fn name_string(name: &[u8]) -> Result<String, X509Error> {
    // (RDN index, "type=value") in encoding order.
    let mut attributes: Vec<(usize, String)> = Vec::new();
    let mut rest = name;
    let mut rdn = 0;
    while !rest.is_empty() {
        let (set, next) = expect(rest, SET)?;
        rest = next;
        let mut inside = set;
        while !inside.is_empty() {
            let (pair, next) = expect(inside, SEQUENCE)?;
            inside = next;
            let (oid, value) = expect(pair, OID)?;
            let (tag, content, after) = element(value)?;
            let der = &value[..value.len() - after.len()];
            let text = match (short_name(oid)?, decode_string(tag, content)) {
                (Some(name), Some(text)) => format!("{name}={}", escape(&text)),
                (Some(name), None) => format!("{name}=#{}", hex(der)),
                (None, _) => format!("{}=#{}", dotted_oid(oid)?, hex(der)),
            };
            attributes.push((rdn, text));
        }
        rdn += 1;
    }
    let mut out = String::new();
    let mut previous: Option<usize> = None;
    for (rdn, text) in attributes.iter().rev() {
        if let Some(previous) = previous {
            out.push(if previous == *rdn { '+' } else { ',' });
        }
        out.push_str(text);
        previous = Some(*rdn);
    }
    Ok(out)
}

/// One TLV: tag, content, and what follows it.
fn element(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), X509Error> {
    let (&tag, rest) = bytes.split_first().ok_or(X509Error::Truncated)?;
    let (&first, rest) = rest.split_first().ok_or(X509Error::Truncated)?;
    let (length, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 {
            return Err(X509Error::BadLength);
        }
        if rest.len() < count {
            return Err(X509Error::Truncated);
        }
        let length = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (length, &rest[count..])
    };
    if length > rest.len() {
        return Err(X509Error::Truncated);
    }
    Ok((tag, &rest[..length], &rest[length..]))
}

fn expect(bytes: &[u8], expected: u8) -> Result<(&[u8], &[u8]), X509Error> {
    let (found, content, rest) = element(bytes)?;
    if found != expected {
        return Err(X509Error::UnexpectedTag { expected, found });
    }
    Ok((content, rest))
}

/// The text of a directory string, or `None` for a type OpenSSL does not print as text.
fn decode_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        0x0c => Some(String::from_utf8_lossy(content).into_owned()),
        // One byte per character: NumericString, PrintableString, TeletexString, VideotexString,
        // IA5String, UTCTime, GeneralizedTime, GraphicString, VisibleString, GeneralString.
        0x12..=0x1b => Some(content.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e => {
            let units: Vec<u16> =
                content.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UniversalString: UTF-32 big-endian.
        0x1c => Some(
            content
                .chunks(4)
                .map(|c| {
                    let mut word = [0u8; 4];
                    word[..c.len()].copy_from_slice(c);
                    char::from_u32(u32::from_be_bytes(word)).unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        ),
        _ => None,
    }
}

/// RFC 4514 escaping as OpenSSL does it: `\` before `,+"\<>;`, before `#` or a space that starts
/// the value and a space that ends it; control characters and every UTF-8 byte of non-ASCII text
/// as `\XX`. A hostile certificate therefore cannot put a line break or a terminal escape into a
/// banner.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let count = value.chars().count();
    for (index, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if index == 0 => out.push_str("\\#"),
            ' ' if index == 0 || index + 1 == count => out.push_str("\\ "),
            c if c.is_ascii_control() || !c.is_ascii() => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("\\{byte:02X}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The short name OpenSSL prints for an attribute type (the names Recog's examples use), or
/// `None` for a type OpenSSL does not name (printed as a dotted identifier and hex).
fn short_name(oid: &[u8]) -> Result<Option<&'static str>, X509Error> {
    let dotted = dotted_oid(oid)?;
    Ok(Some(match dotted.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.14" => "searchGuide",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.18" => "postOfficeBox",
        "2.5.4.20" => "telephoneNumber",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "x500UniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "1.2.840.113549.1.9.8" => "unstructuredAddress",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return Ok(None),
    }))
}

fn dotted_oid(oid: &[u8]) -> Result<String, X509Error> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut pending = false;
    for &byte in oid {
        if value > u64::MAX >> 7 {
            return Err(X509Error::BadOid);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        pending = byte & 0x80 != 0;
        if !pending {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if pending || arcs.is_empty() {
        return Err(X509Error::BadOid);
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(SEQUENCE, &[tlv(OID, oid), tlv(tag, value)].concat())
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];

    #[test]
    fn names_are_written_last_first_with_escapes() {
        let name = [
            tlv(SET, &attribute(C, 0x13, b"JP")),
            tlv(SET, &attribute(O, 0x0c, b"Example Co, Ltd.")),
            tlv(SET, &[attribute(CN, 0x0c, b"cam+1"), attribute(CN, 0x13, b" x ")].concat()),
        ]
        .concat();
        // The attributes of the multi-valued RDN come reversed too, as OpenSSL writes them.
        assert_eq!(name_string(&name).unwrap(), r"CN=\ x\ +CN=cam\+1,O=Example Co\, Ltd.,C=JP");
    }

    #[test]
    fn bmp_strings_and_unknown_types() {
        let bmp: Vec<u8> = "カメラ".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let name = [tlv(SET, &attribute(CN, 0x1e, &bmp)), tlv(SET, &attribute(&[0x2a, 0x03], 0x02, &[0x05]))].concat();
        assert_eq!(name_string(&name).unwrap(), r"1.2.3=#020105,CN=\E3\82\AB\E3\83\A1\E3\83\A9");
        let newline = tlv(SET, &attribute(CN, 0x0c, b"x\nServer: y"));
        assert_eq!(name_string(&newline).unwrap(), r"CN=x\0AServer: y");
    }

    #[test]
    fn truncated_and_indefinite_lengths_are_errors() {
        assert_eq!(certificate_names(&[0x30, 0x05, 0x30]), Err(X509Error::Truncated));
        assert_eq!(certificate_names(&[0x30, 0x80, 0x00, 0x00]), Err(X509Error::BadLength));
        assert_eq!(certificate_names(&[]), Err(X509Error::Truncated));
        assert_eq!(dotted_oid(&[0x2a, 0x86]), Err(X509Error::BadOid));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_names_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = certificate_names(&bytes);
            let _ = name_string(&bytes);
        }

        #[test]
        fn any_printable_value_survives_escaping(value in "[ -~]{1,40}") {
            let name = tlv(SET, &attribute(CN, 0x0c, value.as_bytes()));
            let text = name_string(&name).unwrap();
            // Undo RFC 4514 escaping: what comes back is what the certificate said.
            let mut unescaped = String::new();
            let mut chars = text.trim_start_matches("CN=").chars();
            while let Some(c) = chars.next() {
                unescaped.push(if c == '\\' { chars.next().unwrap() } else { c });
            }
            proptest::prop_assert_eq!(unescaped, value);
        }
    }
}
