//! Value types used across the configuration schema. Each one validates while it deserialises, so a bad
//! value is reported by serde with the key path where it occurred.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A TCP port, 1–65535. Port 0 ("any free port") is never what an operator means in a config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port(u16);

impl Port {
    pub const fn new(port: u16) -> Option<Self> {
        if port == 0 { None } else { Some(Self(port)) }
    }

    /// For defaults written in code; a literal 0 here is a programming error caught by the first test.
    pub const fn new_const(port: u16) -> Self {
        assert!(port != 0, "port 0 is not a valid configured port");
        Self(port)
    }

    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .ok()
                    .and_then(Port::new)
                    .ok_or_else(|| E::custom(format!("port out of range: {v} (expected 1-65535)")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port out of range: {v} (expected 1-65535)")))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_u64(V)
    }
}

/// An IPv4 or IPv6 network in CIDR notation; a bare address means a single host (/32 or /128).
/// Host bits below the prefix are cleared, so `10.1.2.3/8` and `10.0.0.0/8` are the same entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn net(&self) -> IpNet {
        self.0
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl From<IpNet> for Cidr {
    fn from(net: IpNet) -> Self {
        Self(net.trunc())
    }
}

impl From<IpAddr> for Cidr {
    fn from(ip: IpAddr) -> Self {
        Self(IpNet::from(ip))
    }
}

/// Why a string is not a CIDR; the message names the input.
#[derive(Debug, thiserror::Error)]
#[error("invalid CIDR `{0}`: expected an IP address or a network like 192.0.2.0/24 or 2001:db8::/32")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(net.into());
        }
        s.parse::<IpAddr>().map(Cidr::from).map_err(|_| CidrError(s.to_owned()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A size in bytes, written as an integer or with a binary unit: `512`, `64KB`, `10MB`, `1GB` (1 KB = 1024 B,
/// as nginx reads sizes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

impl ByteSize {
    pub const fn bytes(n: u64) -> Self {
        Self(n)
    }

    pub const fn kib(n: u64) -> Self {
        Self(n * 1024)
    }

    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    pub const fn gib(n: u64) -> Self {
        Self(n * 1024 * 1024 * 1024)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

const UNITS: [(&str, u64); 4] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        let upper = upper.strip_suffix("IB").map(|p| format!("{p}B")).unwrap_or(upper);
        let (digits, mult) = UNITS
            .iter()
            .find_map(|(unit, mult)| upper.strip_suffix(unit).map(|d| (d.trim().to_owned(), *mult)))
            .unwrap_or((upper.clone(), 1));
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid size `{s}`: expected a number of bytes or e.g. 64KB, 10MB, 1GB"))?;
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in UNITS {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 1048576, 64KB, 10MB or 1GB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("size cannot be negative: {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A confidence or threshold between 0.0 and 1.0 inclusive.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Fraction(f64);

impl Fraction {
    pub const fn new_const(v: f64) -> Self {
        Self(v)
    }

    pub const fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(de::Error::custom(format!(
                "value out of range: {v} (expected 0.0 to 1.0)"
            )))
        }
    }
}

/// An ISO 3166-1 alpha-2 country code such as `DE`; lower case is accepted and normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        // Constructed only from two ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(format!(
                "invalid country code `{s}`: expected two letters such as DE or US"
            )),
        }
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_accepts_bare_addresses_and_clears_host_bits() {
        assert_eq!(
            "192.0.2.7".parse::<Cidr>().map(|c| c.to_string()).ok(),
            Some("192.0.2.7/32".into())
        );
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().map(|c| c.to_string()).ok(),
            Some("10.0.0.0/8".into())
        );
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().map(|c| c.to_string()).ok(),
            Some("2001:db8::1/128".into())
        );
    }

    #[test]
    fn cidr_error_names_the_input() {
        let err = "300.1.2.3/8"
            .parse::<Cidr>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`300.1.2.3/8`"), "{err}");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!("10MB".parse::<ByteSize>(), Ok(ByteSize::mib(10)));
        assert_eq!("64kb".parse::<ByteSize>(), Ok(ByteSize::kib(64)));
        assert_eq!("1GiB".parse::<ByteSize>(), Ok(ByteSize::gib(1)));
        assert_eq!("512".parse::<ByteSize>(), Ok(ByteSize::bytes(512)));
        assert!("ten MB".parse::<ByteSize>().is_err());
        assert!("99999999999GB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize::mib(10).to_string(), "10MB");
        assert_eq!(ByteSize::bytes(1500).to_string(), "1500B");
    }

    #[test]
    fn country_codes_are_two_letters_upper_cased() {
        assert_eq!(
            "de".parse::<CountryCode>().map(|c| c.as_str().to_owned()),
            Ok("DE".into())
        );
        assert!("DEU".parse::<CountryCode>().is_err());
        assert!("D1".parse::<CountryCode>().is_err());
    }
}
