//! A minimal blocking HTTP/1.1 client over one keep-alive connection, for tests that send thousands of
//! requests (a curl process per request would dominate the run time). Reads `Content-Length` and chunked bodies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
            addr,
        })
    }

    /// Reconnects (after the server closed the connection).
    pub fn reconnect(&mut self) -> io::Result<()> {
        *self = Self::connect(self.addr)?;
        Ok(())
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        self.request("GET", path, headers, b"")
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        self.read_response(method == "HEAD")
    }

    /// Writes bytes exactly as given (for malformed, pipelined or hand-framed requests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads the next response (after `send_raw`); `head_only` for answers to HEAD.
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 || status == 101 {
            return Ok(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                if size == 0 {
                    line.clear();
                    self.reader.read_line(&mut line)?;
                    break;
                }
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                resp.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = resp.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// The raw stream, for protocol tests after the HTTP part (upgrades).
    pub fn into_stream(self) -> (TcpStream, Vec<u8>) {
        let buffered = self.reader.buffer().to_vec();
        (self.reader.into_inner(), buffered)
    }
}

/// Opens a WebSocket through the proxy at `addr` (`path` on an upstream that echoes bytes verbatim, as the
/// test upstreams do), checks the `101`, then sends one masked text frame and checks that the same bytes
/// come back through the tunnel. Returns the `101` answer for further checks.
pub fn websocket_echo(addr: SocketAddr, path: &str) -> Response {
    let mut c = Client::connect(addr).unwrap();
    let r = c
        .get(
            path,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 101, "the handshake through the proxy");
    let (mut stream, buffered) = c.into_stream();
    assert!(
        buffered.is_empty(),
        "nothing may follow the 101 before the client speaks"
    );
    // "hello", masked with 1 2 3 4 as a client must.
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x81u8, 0x85];
    frame.extend_from_slice(&key);
    frame.extend(b"hello".iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    stream.write_all(&frame).unwrap();
    let mut back = vec![0u8; frame.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, frame, "bytes must cross the tunnel unchanged both ways");
    r
}
