//! Runs a WebAssembly module on WasmWiz with Rust's standard library alone.
//!
//!     export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
//!     echo "Ada" | cargo run --release -- ../../src/wasmwiz/examples/echo.wat
//!
//! With `--name echo` it stores the module under that name first and runs it by reference.
//! `--file PATH` (repeatable) puts a local file in the run's directory under its base name;
//! `--collect PATTERN` brings back the files the run leaves that match it, printed after
//! its output.
//!
//! std has no HTTP client, TLS or JSON, so this speaks HTTP/1.1 over a TcpStream, builds the
//! multipart body by hand, and reads the few JSON fields it needs and decodes base64 with
//! small functions of its own. It
//! therefore talks plain `http://` only; for HTTPS use a client crate such as `ureq` or
//! `reqwest` with `serde_json`.

use std::collections::BTreeMap;
use std::env;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::exit;
use std::time::Duration;

fn main() {
    let url = env::var("WASMWIZ_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = env::var("WASMWIZ_API_KEY").unwrap_or_default();
    let usage = "usage: WASMWIZ_API_KEY=ww_... wasmwiz-example [--name NAME] [--file PATH]... \
                 [--collect PATTERN] MODULE < input";
    let mut args = env::args().skip(1);
    let (mut name, mut files, mut collect, mut module_path) = (None, Vec::new(), None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" | "--file" | "--collect" => {
                let value = args.next().unwrap_or_else(|| fail(usage));
                match arg.as_str() {
                    "--name" => name = Some(value),
                    "--file" => files.push(value),
                    _ => collect = Some(value),
                }
            }
            _ if module_path.is_none() => module_path = Some(arg),
            _ => fail(usage),
        }
    }
    let Some(path) = module_path.filter(|_| !key.is_empty()) else {
        fail(usage)
    };
    let module = std::fs::read(&path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let mut stdin = Vec::new();
    io::stdin()
        .read_to_end(&mut stdin)
        .unwrap_or_else(|e| fail(&e.to_string()));

    let filename = path.rsplit('/').next().unwrap_or("main.wasm");
    let boundary = "wasmwiz-example-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    match &name {
        None => file_part(&mut body, boundary, "wasm", filename, &module),
        Some(name) => {
            // Store the module once: 201, or 200 if these bytes were stored already.
            let mut upload = Vec::new();
            file_part(&mut upload, boundary, "wasm", filename, &module);
            text_part(&mut upload, boundary, "name", name);
            upload.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            let stored = send(&url, &key, "/api/v1/modules", boundary, &upload);
            let id = stored.get("id").and_then(Json::as_str).unwrap_or("?");
            eprintln!("stored {id} as {name}");
            // Then run it by reference: `module` (a name or its id) instead of `wasm`.
            text_part(&mut body, boundary, "module", name);
        }
    }
    file_part(&mut body, boundary, "input", "input", &stdin);
    text_part(&mut body, boundary, "args", "[]"); // a JSON array of strings

    // One `files` part per file, its filename the file's path in the run's directory.
    for file in &files {
        let content = std::fs::read(file).unwrap_or_else(|e| fail(&format!("{file}: {e}")));
        let base = file.rsplit('/').next().unwrap_or(file);
        file_part(&mut body, boundary, "files", base, &content);
    }
    if let Some(pattern) = &collect {
        // A JSON array of globs; a pattern with `"` or `\` would need escaping here.
        text_part(&mut body, boundary, "collect", &format!("[\"{pattern}\"]"));
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());

    // A trap or a timeout is a 200 too: `status` says how the run ended.
    let json = send(&url, &key, "/api/v1/execute", boundary, &body);
    let exit_code = match json.get("exit_code") {
        Some(Json::Number(n)) => format!("{n}"),
        _ => "null".into(),
    };
    println!(
        "status: {}, exit code: {exit_code}",
        json.get("status").and_then(Json::as_str).unwrap_or("?")
    );
    print!(
        "{}",
        json.get("output").and_then(Json::as_str).unwrap_or("")
    );
    eprint!(
        "{}",
        json.get("stderr").and_then(Json::as_str).unwrap_or("")
    );
    // Each collected file; a program that writes them to disk must keep every path inside
    // its directory (no absolute path, no `..`).
    let no_files = Vec::new();
    let collected = match json.get("files") {
        Some(Json::Array(items)) => items,
        _ => &no_files,
    };
    let mut stdout = io::stdout();
    for file in collected {
        let path = file.get("path").and_then(Json::as_str).unwrap_or("?");
        let size = match file.get("size") {
            Some(Json::Number(n)) => *n as u64,
            _ => 0,
        };
        match file.get("content").and_then(Json::as_str) {
            // null: past the service's cap on collected files
            None => println!("file: {path} ({size} bytes, not sent: over the cap)"),
            Some(content) => {
                println!("file: {path} ({size} bytes)");
                let bytes = base64_decode(content).unwrap_or_else(|| fail("bad base64"));
                stdout
                    .write_all(&bytes)
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
        }
    }
}

/// Standard base64 (with `=` padding) to bytes; None for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let data = text.as_bytes();
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    for quad in data.chunks(4) {
        let padding = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if quad.len() != 4 || padding > 2 {
            return None;
        }
        let mut bits = 0u32;
        for &c in &quad[..4 - padding] {
            bits = (bits << 6) | digit(c)?;
        }
        bits <<= 6 * padding as u32;
        out.extend_from_slice(&bits.to_be_bytes()[1..4 - padding]);
    }
    Some(out)
}

/// POSTs the form to {url}{path} and returns its 2xx JSON answer; on a refusal it prints the
/// problem and exits 1, and exits 2 when the server cannot be reached.
fn send(url: &str, key: &str, path: &str, boundary: &str, body: &[u8]) -> Json {
    let (status, headers, response) = post(url, key, path, boundary, body).unwrap_or_else(|e| {
        eprintln!("Could not reach {url}: {e}");
        exit(2)
    });
    let json = Json::parse(&response).unwrap_or_else(|| fail("the response is not JSON"));
    if !(200..300).contains(&status) {
        // Refusals are RFC 9457 problem details with a stable `code`.
        let retry = headers
            .get("retry-after")
            .map(|s| format!("; retry after {s} s"))
            .unwrap_or_default();
        eprintln!(
            "WasmWiz refused the request: {} (HTTP {status}): {}{retry}",
            json.get("code").and_then(Json::as_str).unwrap_or("?"),
            json.get("detail").and_then(Json::as_str).unwrap_or(""),
        );
        exit(1);
    }
    json
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    exit(2)
}

fn file_part(body: &mut Vec<u8>, boundary: &str, field: &str, filename: &str, data: &[u8]) {
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n");
}

fn text_part(body: &mut Vec<u8>, boundary: &str, field: &str, value: &str) {
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
        )
        .as_bytes(),
    );
}

/// POSTs the form to {url}{path}; returns the status, headers (lower-cased) and body.
fn post(
    url: &str,
    key: &str,
    path: &str,
    boundary: &str,
    body: &[u8],
) -> io::Result<(u16, BTreeMap<String, String>, Vec<u8>)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "only http:// URLs"))?;
    let (authority, base_path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST {base_path}{path} HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {key}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The server may refuse (e.g. a wrong key) before reading the whole body and close the
    // connection: a failed write or a reset then still leaves its response to read.
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body));
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if raw.is_empty() => return Err(sent.err().unwrap_or(e)),
            Err(_) => break,
        }
    }

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut content = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .map(|v| v.contains("chunked"))
        == Some(true)
    {
        content = dechunk(&content);
    }
    Ok((status, headers, content))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
    out
}

/// Just enough JSON to read a response: objects, arrays, strings, numbers, true/false/null.
#[allow(dead_code)] // the example reads strings, numbers and arrays; booleans parse too
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn parse(bytes: &[u8]) -> Option<Json> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let value = parser.value()?;
        parser.space();
        (parser.at == parser.chars.len()).then_some(value)
    }

    fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.get(name),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(' ' | '\n' | '\r' | '\t')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Option<Json> {
        for expected in word.chars() {
            (self.next()? == expected).then_some(())?;
        }
        Some(value)
    }

    fn value(&mut self) -> Option<Json> {
        self.space();
        match self.peek()? {
            '{' => {
                self.at += 1;
                let mut fields = BTreeMap::new();
                self.space();
                if self.peek() == Some('}') {
                    self.at += 1;
                    return Some(Json::Object(fields));
                }
                loop {
                    self.space();
                    let Json::Str(name) = self.string()? else {
                        return None;
                    };
                    self.space();
                    (self.next()? == ':').then_some(())?;
                    fields.insert(name, self.value()?);
                    self.space();
                    match self.next()? {
                        ',' => continue,
                        '}' => return Some(Json::Object(fields)),
                        _ => return None,
                    }
                }
            }
            '[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.peek() == Some(']') {
                    self.at += 1;
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.space();
                    match self.next()? {
                        ',' => continue,
                        ']' => return Some(Json::Array(items)),
                        _ => return None,
                    }
                }
            }
            '"' => self.string(),
            't' => self.literal("true", Json::Bool(true)),
            'f' => self.literal("false", Json::Bool(false)),
            'n' => self.literal("null", Json::Null),
            _ => {
                let start = self.at;
                while matches!(self.peek(), Some('0'..='9' | '-' | '+' | '.' | 'e' | 'E')) {
                    self.at += 1;
                }
                let text: String = self.chars[start..self.at].iter().collect();
                text.parse().ok().map(Json::Number)
            }
        }
    }

    fn string(&mut self) -> Option<Json> {
        (self.next()? == '"').then_some(())?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(Json::Str(out)),
                '\\' => match self.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let mut code = self.hex4()?;
                        if (0xD800..0xDC00).contains(&code) {
                            // A surrogate pair: \uD83D\uDE00 is one character.
                            (self.next()? == '\\' && self.next()? == 'u').then_some(())?;
                            code = 0x10000 + ((code - 0xD800) << 10) + (self.hex4()? - 0xDC00);
                        }
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    other => out.push(other), // \" \\ \/
                },
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits: String = (0..4).filter_map(|_| self.next()).collect();
        u32::from_str_radix(&digits, 16).ok()
    }
}
