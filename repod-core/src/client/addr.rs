//! [`ServerAddr`]: what a client connects to, borrowed or owned.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use tokio::net::TcpStream;

/// An address a client can connect to: the forms `TcpStream::connect` takes, owned or
/// borrowed (`"127.0.0.1:5071"`, `addr.as_str()`, a `String`, a [`SocketAddr`],
/// `("example.com", 5071)`, `(ip, port)`, a slice of socket addresses, and references to any
/// of them).
///
/// A text address starting with `ws://` (`"ws://127.0.0.1:5072/"`) connects over WebSocket
/// instead of plain TCP, with the `websocket` feature; the port defaults to 80.
///
/// The address is copied when the client starts, so a borrowed one need only live for the call;
/// host names are resolved on the client's i/o task, never on the caller's thread.
///
/// This trait is sealed: it cannot be implemented outside repod.
pub trait ServerAddr: sealed::Sealed {
    /// The address, copied into a form the connection task owns.
    #[doc(hidden)]
    fn target(&self) -> Target;
}

mod sealed {
    pub trait Sealed {}
}

/// An owned connect target, resolved when the connection is made.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Addresses known already (IP literals).
    Addrs(Vec<SocketAddr>),
    /// `"host:port"` text, resolved when connecting.
    Text(String),
    /// A host name and a port, resolved when connecting.
    HostPort(String, u16),
    /// A URL (`ws://host:port/path`): the scheme names the transport.
    Url(String),
}

/// The transport a [`Target::Url`] names, and the `host:port` to open a TCP connection to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `ws://`
    Ws,
}

/// Splits a URL into its scheme and the `host:port` of its authority (with the scheme's
/// default port when it has none).
pub(crate) fn parse_url(url: &str) -> std::io::Result<(Scheme, String)> {
    let invalid =
        |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{why}: {url}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("not a URL"))?;
    let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "ws" => (Scheme::Ws, 80),
        _ => return Err(invalid("unsupported URL scheme (ws:// is supported)")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("a URL needs a host (and no user info)"));
    }
    // A port follows the last ':' that is not inside an IPv6 literal's brackets.
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    let host_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    Ok((scheme, host_port))
}

impl Target {
    /// Opens a TCP connection to the first of the target's addresses that accepts.
    pub(crate) async fn connect(&self) -> std::io::Result<TcpStream> {
        match self {
            Target::Addrs(addrs) => TcpStream::connect(&addrs[..]).await,
            Target::Text(text) => TcpStream::connect(text.as_str()).await,
            Target::HostPort(host, port) => TcpStream::connect((host.as_str(), *port)).await,
            Target::Url(url) => {
                let (_, host_port) = parse_url(url)?;
                TcpStream::connect(host_port.as_str()).await
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addrs(addrs) => match addrs.as_slice() {
                [one] => write!(f, "{one}"),
                many => {
                    let texts: Vec<String> = many.iter().map(ToString::to_string).collect();
                    write!(f, "[{}]", texts.join(", "))
                }
            },
            Target::Text(text) => f.write_str(text),
            Target::HostPort(host, port) => write!(f, "{host}:{port}"),
            Target::Url(url) => f.write_str(url),
        }
    }
}

macro_rules! socket_addrs {
    ($($ty:ty => |$a:ident| $addr:expr;)*) => {
        $(
            impl sealed::Sealed for $ty {}
            impl ServerAddr for $ty {
                fn target(&self) -> Target {
                    let $a = self;
                    Target::Addrs(vec![$addr])
                }
            }
        )*
    };
}

socket_addrs! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

impl sealed::Sealed for [SocketAddr] {}
impl ServerAddr for [SocketAddr] {
    fn target(&self) -> Target {
        Target::Addrs(self.to_vec())
    }
}

impl sealed::Sealed for str {}
impl ServerAddr for str {
    fn target(&self) -> Target {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Target::Addrs(vec![addr]),
            Err(_) if self.contains("://") => Target::Url(self.to_owned()),
            Err(_) => Target::Text(self.to_owned()),
        }
    }
}

impl sealed::Sealed for String {}
impl ServerAddr for String {
    fn target(&self) -> Target {
        self.as_str().target()
    }
}

fn host_port(host: &str, port: u16) -> Target {
    match host.parse::<IpAddr>() {
        Ok(ip) => Target::Addrs(vec![SocketAddr::new(ip, port)]),
        Err(_) => Target::HostPort(host.to_owned(), port),
    }
}

impl sealed::Sealed for (&str, u16) {}
impl ServerAddr for (&str, u16) {
    fn target(&self) -> Target {
        host_port(self.0, self.1)
    }
}

impl sealed::Sealed for (String, u16) {}
impl ServerAddr for (String, u16) {
    fn target(&self) -> Target {
        host_port(&self.0, self.1)
    }
}

impl<T: ServerAddr + ?Sized> sealed::Sealed for &T {}
impl<T: ServerAddr + ?Sized> ServerAddr for &T {
    fn target(&self) -> Target {
        (**self).target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_becomes_an_owned_target() {
        let v4: SocketAddr = "127.0.0.1:5071".parse().unwrap();
        let v6: SocketAddr = "[::1]:5071".parse().unwrap();
        let text = String::from("127.0.0.1:5071");
        assert_eq!(text.as_str().target(), Target::Addrs(vec![v4]));
        assert_eq!(text.target(), Target::Addrs(vec![v4]));
        assert_eq!(ServerAddr::target(&&text), Target::Addrs(vec![v4]));
        assert_eq!(v4.target(), Target::Addrs(vec![v4]));
        assert_eq!(("::1", 5071).target(), Target::Addrs(vec![v6]));
        assert_eq!((v6.ip(), 5071).target(), Target::Addrs(vec![v6]));
        assert_eq!(
            ("example.com", 80).target(),
            Target::HostPort("example.com".into(), 80)
        );
        assert_eq!(
            "example.com:80".target(),
            Target::Text("example.com:80".into())
        );
        assert_eq!([v4, v6][..].target(), Target::Addrs(vec![v4, v6]));
        assert_eq!(v4.target().to_string(), "127.0.0.1:5071");
        assert_eq!(v6.target().to_string(), "[::1]:5071");
        assert_eq!(("example.com", 80).target().to_string(), "example.com:80");
        assert_eq!(
            [v4, v6][..].target().to_string(),
            "[127.0.0.1:5071, [::1]:5071]"
        );
        assert_eq!(
            "ws://127.0.0.1:5072/play".target(),
            Target::Url("ws://127.0.0.1:5072/play".into())
        );
    }

    #[test]
    fn urls_name_their_transport_and_where_to_connect() {
        let ok = |url: &str| parse_url(url).unwrap();
        assert_eq!(
            ok("ws://127.0.0.1:5072/"),
            (Scheme::Ws, "127.0.0.1:5072".into())
        );
        assert_eq!(
            ok("WS://example.com/game?x=1"),
            (Scheme::Ws, "example.com:80".into())
        );
        assert_eq!(
            ok("ws://example.com"),
            (Scheme::Ws, "example.com:80".into())
        );
        assert_eq!(ok("ws://[::1]:9000/a"), (Scheme::Ws, "[::1]:9000".into()));
        assert_eq!(ok("ws://[::1]/a"), (Scheme::Ws, "[::1]:80".into()));
        for bad in [
            "http://example.com/",
            "ws:///path",
            "ws://user@host/",
            "nonsense",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} was accepted");
        }
    }
}
