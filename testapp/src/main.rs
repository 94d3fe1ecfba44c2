//! berth-testapp: a small, static test workload for berth's black-box tests.
//!
//! It runs inside the local image `berth-test/testapp` (see tests/images/build)
//! and is driven only by arguments and environment variables:
//!
//!   berth-testapp serve [--port N]            HTTP server (port: --port, $PORT, 8080)
//!   berth-testapp exit CODE [--after-ms N]    print to stdout and stderr, wait, exit CODE
//!   berth-testapp log N [--interval-ms M]     print `line 1` .. `line N`, exit 0
//!   berth-testapp sleep SECONDS               sleep (SECONDS may be fractional or `infinity`)
//!   berth-testapp health-check URL            exit 0 if GET URL answers 200, else 1
//!   berth-testapp alloc MIB                   allocate and touch MIB MiB, then sleep forever
//!
//! SIGTERM handling, for every command except health-check:
//!   default                 print "got SIGTERM" and exit 143 (as if killed by SIGTERM;
//!                           a container's PID 1 would otherwise ignore SIGTERM)
//!   --trap-sigterm CODE     print "got SIGTERM" and exit CODE
//!   --ignore-sigterm        ignore SIGTERM; only SIGKILL stops the process
//! SIGINT prints "got SIGINT" and exits 130.
//!
//! HTTP routes of `serve` (HTTP/1.1, one thread per connection, `Connection: close`):
//!   GET  /              200 `berth-testapp name=<$TESTAPP_NAME> host=<$HOSTNAME>`
//!   GET  /health        200 `ok` while healthy, 500 `unhealthy` otherwise
//!   POST /unhealthy     make /health answer 500
//!   POST /healthy       make /health answer 200 again
//!   GET  /env           the environment, `KEY=VALUE` lines, sorted
//!   POST /exit/CODE     answer, then exit the process with CODE
//!   POST /alloc/MIB     allocate and touch MIB MiB and keep them
//!   GET  /fetch?url=U   GET http URL U and answer with its status and body
//!                       (502 when U cannot be reached)
//!   GET  /ws            a WebSocket (RFC 6455) that echoes every text and
//!                       binary message, answers pings, and closes when asked
//!
//! Only the standard library is used; signals go through libc's `signal`,
//! declared here by hand.

use std::env;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage:
  berth-testapp serve [--port N]
  berth-testapp exit CODE [--after-ms N]
  berth-testapp log N [--interval-ms M]
  berth-testapp sleep SECONDS [--ignore-sigterm | --trap-sigterm EXIT_CODE]
  berth-testapp health-check URL
  berth-testapp alloc MIB
every command but health-check also takes --ignore-sigterm or --trap-sigterm EXIT_CODE
(default: exit 143 on SIGTERM)";

const MIB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((cmd, rest)) => (cmd.as_str(), rest.to_vec()),
        None => ("", Vec::new()),
    };
    let result = match cmd {
        "serve" => serve(rest),
        "exit" => exit_cmd(rest),
        "log" => log_cmd(rest),
        "sleep" => sleep_cmd(rest),
        "health-check" => health_check_cmd(rest),
        "alloc" => alloc_cmd(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(0)
        }
        "" => Err("no command given".to_string()),
        other => Err(format!("unknown command {other:?}")),
    };
    match result {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("berth-testapp: {e}\n{USAGE}");
            exit(2)
        }
    }
}

fn exit(code: i32) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    process::exit(code)
}

// ---------------------------------------------------------------- arguments

/// Removes `--name VALUE` or `--name=VALUE` from args and returns VALUE.
fn take_opt(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let flag = format!("--{name}");
    let prefix = format!("--{name}=");
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag {
            if i + 1 >= args.len() {
                return Err(format!("{flag} needs a value"));
            }
            let value = args.remove(i + 1);
            args.remove(i);
            return Ok(Some(value));
        }
        if let Some(value) = args[i].strip_prefix(&prefix) {
            let value = value.to_string();
            args.remove(i);
            return Ok(Some(value));
        }
        i += 1;
    }
    Ok(None)
}

/// Removes `--name` from args and tells whether it was there.
fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let flag = format!("--{name}");
    let before = args.len();
    args.retain(|a| *a != flag);
    args.len() != before
}

/// Checks that exactly `names.len()` positional arguments remain and returns them.
fn positionals(args: Vec<String>, names: &[&str]) -> Result<Vec<String>, String> {
    if let Some(opt) = args.iter().find(|a| a.starts_with("--")) {
        return Err(format!("unknown option {opt}"));
    }
    if args.len() != names.len() {
        return Err(format!(
            "expected {} argument(s) ({}), got {:?}",
            names.len(),
            names.join(" "),
            args
        ));
    }
    Ok(args)
}

fn parse<T: std::str::FromStr>(what: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("invalid {what}: {value:?}"))
}

// ---------------------------------------------------------------- signals

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIG_IGN: usize = 1;

static GOT_SIGNAL: AtomicI32 = AtomicI32::new(0);
static SIGTERM_EXIT_CODE: AtomicI32 = AtomicI32::new(143);

extern "C" fn on_signal(signum: i32) {
    // Only an atomic store here: the watcher thread does the rest.
    GOT_SIGNAL.store(signum, Ordering::SeqCst);
}

/// Reads --ignore-sigterm / --trap-sigterm CODE from args and installs the
/// handlers. A watcher thread turns a caught signal into a clean exit.
fn setup_signals(args: &mut Vec<String>) -> Result<(), String> {
    let ignore = take_flag(args, "ignore-sigterm");
    let trap = take_opt(args, "trap-sigterm")?;
    if ignore && trap.is_some() {
        return Err("--ignore-sigterm and --trap-sigterm exclude each other".into());
    }
    let handler = on_signal as extern "C" fn(i32) as usize;
    if ignore {
        unsafe { signal(SIGTERM, SIG_IGN) };
        println!("berth-testapp: ignoring SIGTERM");
    } else {
        let code = match trap {
            Some(code) => {
                let code: i32 = parse("exit code", &code)?;
                println!("berth-testapp: on SIGTERM will exit with code {code}");
                code
            }
            None => 143,
        };
        SIGTERM_EXIT_CODE.store(code, Ordering::SeqCst);
        unsafe { signal(SIGTERM, handler) };
    }
    unsafe { signal(SIGINT, handler) };
    thread::spawn(|| loop {
        thread::sleep(Duration::from_millis(20));
        match GOT_SIGNAL.load(Ordering::SeqCst) {
            0 => {}
            SIGTERM => {
                let code = SIGTERM_EXIT_CODE.load(Ordering::SeqCst);
                println!("got SIGTERM, exiting with code {code}");
                exit(code)
            }
            signum => {
                println!("got SIGINT, exiting with code {}", 128 + signum);
                exit(128 + signum)
            }
        }
    });
    Ok(())
}

// ---------------------------------------------------------------- commands

fn exit_cmd(mut args: Vec<String>) -> Result<i32, String> {
    setup_signals(&mut args)?;
    let after_ms: u64 = match take_opt(&mut args, "after-ms")? {
        Some(v) => parse("--after-ms", &v)?,
        None => 0,
    };
    let args = positionals(args, &["CODE"])?;
    let code: i32 = parse("exit code", &args[0])?;
    println!("berth-testapp: will exit with code {code} after {after_ms} ms (stdout)");
    eprintln!("berth-testapp: will exit with code {code} after {after_ms} ms (stderr)");
    let _ = io::stdout().flush();
    thread::sleep(Duration::from_millis(after_ms));
    Ok(code)
}

fn log_cmd(mut args: Vec<String>) -> Result<i32, String> {
    setup_signals(&mut args)?;
    let interval_ms: u64 = match take_opt(&mut args, "interval-ms")? {
        Some(v) => parse("--interval-ms", &v)?,
        None => 0,
    };
    let args = positionals(args, &["N"])?;
    let n: u64 = parse("line count", &args[0])?;
    let stdout = io::stdout();
    for i in 1..=n {
        {
            let mut out = stdout.lock();
            let _ = writeln!(out, "line {i}");
            let _ = out.flush();
        }
        if interval_ms > 0 && i < n {
            thread::sleep(Duration::from_millis(interval_ms));
        }
    }
    Ok(0)
}

fn sleep_cmd(mut args: Vec<String>) -> Result<i32, String> {
    setup_signals(&mut args)?;
    let args = positionals(args, &["SECONDS"])?;
    let arg = args[0].trim();
    if arg == "infinity" || arg == "inf" {
        println!("berth-testapp: sleeping forever");
        sleep_forever()
    }
    let secs: f64 = parse("seconds", arg)?;
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(format!("invalid seconds: {arg:?}"));
    }
    println!("berth-testapp: sleeping {arg} s");
    thread::sleep(Duration::from_secs_f64(secs));
    println!("berth-testapp: done sleeping");
    Ok(0)
}

fn sleep_forever() -> ! {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn health_check_cmd(args: Vec<String>) -> Result<i32, String> {
    let args = positionals(args, &["URL"])?;
    match http_get(&args[0]) {
        Ok((200, _)) => {
            println!("health-check {}: 200", args[0]);
            Ok(0)
        }
        Ok((status, _)) => {
            println!("health-check {}: {status}", args[0]);
            Ok(1)
        }
        Err(e) => {
            println!("health-check {}: {e}", args[0]);
            Ok(1)
        }
    }
}

fn alloc_cmd(mut args: Vec<String>) -> Result<i32, String> {
    setup_signals(&mut args)?;
    let args = positionals(args, &["MIB"])?;
    let mib: usize = parse("MiB", &args[0])?;
    println!("berth-testapp: allocating {mib} MiB");
    let total = allocate(mib, true);
    println!("berth-testapp: allocated {mib} MiB (total {total} MiB), sleeping forever");
    sleep_forever()
}

/// Memory kept alive on purpose (1 MiB chunks).
static HEAP: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Allocates and touches `mib` MiB, keeps it, and returns the total kept.
fn allocate(mib: usize, progress: bool) -> usize {
    let mut heap = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    for i in 1..=mib {
        // A non-zero fill writes every page, so the memory is really used.
        heap.push(std::hint::black_box(vec![0xA5u8; MIB]));
        if progress && i % 16 == 0 {
            println!("berth-testapp: allocated {i} MiB");
        }
    }
    heap.len()
}

// ---------------------------------------------------------------- server

static HEALTHY: AtomicBool = AtomicBool::new(true);

fn hostname() -> String {
    env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_default()
}

fn app_name() -> String {
    env::var("TESTAPP_NAME").unwrap_or_else(|_| "berth-testapp".to_string())
}

fn serve(mut args: Vec<String>) -> Result<i32, String> {
    setup_signals(&mut args)?;
    let port = match take_opt(&mut args, "port")? {
        Some(p) => p,
        None => env::var("PORT").ok().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "8080".into()),
    };
    let port: u16 = parse("port", &port)?;
    positionals(args, &[])?;
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("cannot listen on 0.0.0.0:{port}: {e}"))?;
    println!(
        "berth-testapp: serving HTTP on 0.0.0.0:{port} (name={}, host={})",
        app_name(),
        hostname()
    );
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                thread::spawn(move || handle_connection(stream));
            }
            Err(e) => {
                eprintln!("berth-testapp: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(0)
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// Exit the process with this code once the response is sent.
    exit_after: Option<i32>,
}

fn reply(status: u16, body: impl Into<Vec<u8>>) -> Response {
    Response { status, body: body.into(), exit_after: None }
}

fn handle_connection(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut content_length = 0usize;
    let mut websocket_key = None;
    let mut upgrade = false;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("sec-websocket-key") {
                websocket_key = Some(v.trim().to_string());
            } else if k.eq_ignore_ascii_case("upgrade") {
                upgrade = v.trim().eq_ignore_ascii_case("websocket");
            }
        }
    }
    if content_length > 0 {
        let _ = io::copy(&mut (&mut reader).take(content_length as u64), &mut io::sink());
    }

    if target == "/ws" && method == "GET" {
        match websocket_key.filter(|_| upgrade) {
            Some(key) => websocket_echo(reader, stream, &key),
            None => {
                let mut stream = stream;
                let body = "a WebSocket upgrade is expected here\n";
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
        return;
    }
    let response = route(&method, &target);
    println!("{method} {target} -> {}", response.status);
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&response.body);
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    if let Some(code) = response.exit_after {
        // Give the client a moment to read the answer before the socket goes.
        thread::sleep(Duration::from_millis(50));
        println!("berth-testapp: exiting with code {code} as requested");
        exit(code);
    }
}

fn route(method: &str, target: &str) -> Response {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let is_get = method == "GET" || method == "HEAD";
    let is_post = method == "POST" || method == "PUT";
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] if is_get => reply(200, format!("berth-testapp name={} host={}\n", app_name(), hostname())),
        ["health"] if is_get => {
            if HEALTHY.load(Ordering::SeqCst) {
                reply(200, "ok")
            } else {
                reply(500, "unhealthy")
            }
        }
        ["unhealthy"] if is_post => {
            HEALTHY.store(false, Ordering::SeqCst);
            reply(200, "now unhealthy\n")
        }
        ["healthy"] if is_post => {
            HEALTHY.store(true, Ordering::SeqCst);
            reply(200, "now healthy\n")
        }
        ["env"] if is_get => {
            let mut vars: Vec<(String, String)> = env::vars_os()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
                .collect();
            vars.sort();
            let body: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            reply(200, body)
        }
        ["exit", code] if is_post => match code.parse::<i32>() {
            Ok(code) => Response {
                status: 200,
                body: format!("exiting with code {code}\n").into_bytes(),
                exit_after: Some(code),
            },
            Err(_) => reply(400, format!("invalid exit code {code:?}\n")),
        },
        ["alloc", mib] if is_post => match mib.parse::<usize>() {
            Ok(mib) => {
                let total = allocate(mib, false);
                reply(200, format!("allocated {mib} MiB (total {total} MiB)\n"))
            }
            Err(_) => reply(400, format!("invalid MiB {mib:?}\n")),
        },
        ["fetch"] if is_get => {
            let url = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "url")
                .map(|(_, v)| percent_decode(v));
            match url {
                None => reply(400, "missing ?url=\n"),
                Some(url) => match http_get(&url) {
                    Ok((status, body)) => reply(status, body),
                    Err(e) => reply(502, format!("fetch {url} failed: {e}\n")),
                },
            }
        }
        ["" | "health" | "env" | "fetch"] | ["unhealthy" | "healthy"] | ["exit", _] | ["alloc", _] => {
            reply(405, "method not allowed\n")
        }
        _ => reply(404, "not found\n"),
    }
}

/// Accept the upgrade and echo messages until the client closes.
fn websocket_echo(mut reader: BufReader<TcpStream>, mut stream: TcpStream, key: &str) {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let accept = base64(&sha1(format!("{key}{GUID}").as_bytes()));
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    println!("GET /ws -> 101");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    loop {
        let mut h = [0u8; 2];
        if reader.read_exact(&mut h).is_err() {
            return;
        }
        let opcode = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            if reader.read_exact(&mut b).is_err() {
                return;
            }
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            if reader.read_exact(&mut b).is_err() {
                return;
            }
            len = u64::from_be_bytes(b);
        }
        if len > 16 * MIB as u64 {
            return;
        }
        let mut mask = [0u8; 4];
        if masked && reader.read_exact(&mut mask).is_err() {
            return;
        }
        let mut payload = vec![0u8; len as usize];
        if reader.read_exact(&mut payload).is_err() {
            return;
        }
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        // Echo data (text, binary, continuation) as sent; pong a ping;
        // answer a close with a close and stop.
        let reply_opcode = match opcode {
            0x0..=0x2 => opcode,
            0x8 => 0x8,
            0x9 => 0xA,
            _ => continue,
        };
        let mut frame = vec![(h[0] & 0x80) | reply_opcode];
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 0xffff => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        if stream.write_all(&frame).is_err() || opcode == 0x8 {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// SHA-1 (FIPS 180-4), for the WebSocket handshake only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- client

/// GETs an `http://host[:port][/path]` URL; returns status and body.
fn http_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported: {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_host_port(authority)?;
    let addrs = resolve(&host, port)?;
    let timeout = Duration::from_secs(5);
    let mut last_err = format!("no address for {host}");
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("connect {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: berth-testapp\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(|e| format!("read: {e}"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| format!("read: {e}"))? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    let read_err = |e: io::Error| format!("read body: {e}");
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).map_err(read_err)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(read_err)?;
            let mut crlf = String::new();
            reader.read_line(&mut crlf).map_err(read_err)?;
        }
    } else if let Some(len) = content_length {
        reader.take(len).read_to_end(&mut body).map_err(read_err)?;
    } else {
        reader.read_to_end(&mut body).map_err(read_err)?;
    }
    Ok((status, body))
}

fn split_host_port(authority: &str) -> Result<(String, u16), String> {
    let bad = || format!("bad host:port {authority:?}");
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 80,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_string(), 80)),
    }
}

/// Resolves without depending on NSS where possible: IP literals and
/// `localhost` directly, then /etc/hosts, then the C library's resolver.
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]);
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        let mut found = Vec::new();
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(ip) = fields.next().and_then(|ip| ip.parse::<IpAddr>().ok()) else {
                continue;
            };
            if fields.any(|name| name.eq_ignore_ascii_case(host)) {
                found.push(SocketAddr::new(ip, port));
            }
        }
        // Prefer IPv4: containers often have no IPv6 route.
        found.sort_by_key(|a| !a.is_ipv4());
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    if addrs.is_empty() {
        return Err(format!("resolve {host}: no addresses"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_websocket_accept_of_rfc_6455s_example() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        assert_eq!(super::base64(&super::sha1(key.as_bytes())), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
