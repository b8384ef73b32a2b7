//! tokio-echo: the echo server a tokio user writes, a peer for the uring-echo benchmarks.
//!
//!   tokio-echo [--host 127.0.0.1] [--port 6666] [--runtime current-thread|multi-thread] [--threads N]
//!
//! One task per connection: a 4 KiB buffer owned by the task and reused for every read, then
//! `write_all` of what was read (no allocation per read), TCP_NODELAY on every connection. The
//! current-thread runtime is the fair single-core row; the multi-thread runtime runs N workers
//! (default: the CPUs this process may run on). Prints nothing unless something fails; SIGINT or
//! SIGTERM exits 0.

use std::net::{IpAddr, SocketAddr};
use std::process::exit;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

const BUFFER_SIZE: usize = 4096;
const BACKLOG: u32 = 4096;
const USAGE: &str = "usage: tokio-echo [--host ADDRESS] [--port PORT] [--runtime current-thread|multi-thread] [--threads N]";

struct Options {
    address: SocketAddr,
    multi_thread: bool,
    threads: Option<usize>,
}

fn fail(message: &str, code: i32) -> ! {
    eprintln!("tokio-echo: error: {message}");
    exit(code)
}

fn parse_options() -> Options {
    let (mut host, mut port, mut multi_thread, mut threads) = ("127.0.0.1".to_string(), 6666u16, false, None);
    let mut arguments = std::env::args().skip(1);
    while let Some(option) = arguments.next() {
        let mut value = || arguments.next().unwrap_or_else(|| fail(&format!("{option} needs a value"), 64));
        match option.as_str() {
            "--host" => host = value(),
            "--port" => port = value().parse().unwrap_or_else(|_| fail("invalid port: must be 0...65535", 64)),
            "--runtime" => {
                multi_thread = match value().as_str() {
                    "current-thread" => false,
                    "multi-thread" => true,
                    other => fail(&format!("invalid runtime '{other}': current-thread or multi-thread"), 64),
                }
            }
            "--threads" => match value().parse::<usize>() {
                Ok(n) if n >= 1 => threads = Some(n),
                _ => fail("invalid threads: must be at least 1", 64),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                println!("tokio echo server (default 127.0.0.1:6666, current-thread runtime); --threads sets the");
                println!("multi-thread runtime's workers (default: the CPUs it may run on). Stops on SIGINT/SIGTERM.");
                exit(0)
            }
            other => fail(&format!("unknown option '{other}' (see 'tokio-echo --help')"), 64),
        }
    }
    if threads.is_some() && !multi_thread {
        fail("--threads needs --runtime multi-thread", 64)
    }
    let ip: IpAddr = host.parse().unwrap_or_else(|_| fail(&format!("invalid host '{host}': an IP address"), 64));
    Options { address: SocketAddr::new(ip, port), multi_thread, threads }
}

/// As many descriptors as the hard limit allows: thousands of connections.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Echoes until the client closes its side (or the connection fails); every byte read is written
/// back before the next read.
async fn echo(mut stream: TcpStream) {
    let mut buffer = [0u8; BUFFER_SIZE];
    loop {
        let count = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(count) => count,
        };
        if stream.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream));
            }
            // Out of descriptors, or a connection reset before it was accepted: go on.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn serve(address: SocketAddr) {
    let listener = listen(address).unwrap_or_else(|e| fail(&format!("cannot listen on {address}: {e}"), 1));
    let mut terminate = signal(SignalKind::terminate()).unwrap_or_else(|e| fail(&format!("SIGTERM: {e}"), 1));
    let mut interrupt = signal(SignalKind::interrupt()).unwrap_or_else(|e| fail(&format!("SIGINT: {e}"), 1));
    tokio::select! {
        _ = accept_loop(listener) => {}
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

fn main() {
    let options = parse_options();
    raise_descriptor_limit();
    let mut builder = if options.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    if let Some(threads) = options.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build().unwrap_or_else(|e| fail(&format!("runtime: {e}"), 1));
    runtime.block_on(serve(options.address));
    // Open connections are not drained: the process exits, and the kernel closes them.
    exit(0)
}
