//! Reading a ferryd's `/metrics` page, to count what crossed the wire from the server's side.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The page at `http://addr/metrics`, fetched with a plain HTTP/1.0 request.
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1."), "{response}");
    assert!(response.contains(" 200 "), "{response}");
    response
}

/// The value of the sample `series` (name and labels as printed), 0 if the page has none yet.
pub fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0.0)
}
