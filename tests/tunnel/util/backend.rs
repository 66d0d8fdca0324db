//! Plaintext TCP backends behind the test edge, one thread per connection:
//! what the "VM" does with the bytes the tunnel delivers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use super::digest_hex;
use super::Prng;

/// What a backend does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Sends back everything it receives, then closes after the client's EOF.
    Echo,
    /// Reads until EOF, then answers `<sha256 hex> <byte count>\n` and closes.
    DigestAfterEof,
    /// Sends `len` pseudo-random bytes from `seed` (see [`Prng`]), then closes
    /// its write side and drains the client until EOF.
    Download { len: u64, seed: u64 },
    /// Sends `len` bytes one at a time, `gap` apart, then closes.
    Trickle { len: usize, gap: Duration },
    /// Echoes, reading and writing in random sizes with random pauses.
    JitterEcho { seed: u64 },
    /// Reads until EOF, then keeps the connection open, silent, for `hold`:
    /// a service (or an edge) that does not pass a half-close on.
    IgnoreEof { hold: Duration },
    /// Closes at once without a byte: the edge's side of a VM port where
    /// nothing listens.
    Hangup,
}

/// Starts a backend on 127.0.0.1 with an OS-chosen port.
pub fn start(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                // A client that vanishes mid-test is the test's business.
                let _ = serve(stream, behaviour);
            });
        }
    });
    addr
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) -> io::Result<()> {
    match behaviour {
        Behaviour::Echo => {
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    return stream.shutdown(Shutdown::Write);
                }
                stream.write_all(&buf[..n])?;
            }
        }
        Behaviour::DigestAfterEof => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0u64;
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                ctx.update(&buf[..n]);
                total += n as u64;
            }
            let answer = format!("{} {total}\n", digest_hex(ctx.finish()));
            stream.write_all(answer.as_bytes())?;
            stream.shutdown(Shutdown::Write)
        }
        Behaviour::Download { len, seed } => {
            let mut prng = Prng::new(seed);
            let mut buf = vec![0; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                prng.fill(&mut buf[..n]);
                stream.write_all(&buf[..n])?;
                left -= n as u64;
            }
            stream.shutdown(Shutdown::Write)?;
            io::copy(&mut stream, &mut io::sink()).map(drop)
        }
        Behaviour::JitterEcho { seed } => {
            // Each connection gets its own sequence of sizes and pauses.
            let port = stream.peer_addr()?.port();
            let mut prng = Prng::new(seed ^ u64::from(port));
            let mut buf = vec![0; 256 * 1024];
            loop {
                let want = prng.range(1, buf.len());
                let n = stream.read(&mut buf[..want])?;
                if n == 0 {
                    return stream.shutdown(Shutdown::Write);
                }
                let mut sent = 0;
                while sent < n {
                    let piece = prng.range(1, n - sent);
                    stream.write_all(&buf[sent..sent + piece])?;
                    sent += piece;
                    if prng.range(0, 7) == 0 {
                        thread::sleep(Duration::from_micros(prng.range(0, 3000) as u64));
                    }
                }
            }
        }
        Behaviour::Hangup => Ok(()),
        Behaviour::IgnoreEof { hold } => {
            io::copy(&mut stream, &mut io::sink())?;
            thread::sleep(hold);
            Ok(())
        }
        Behaviour::Trickle { len, gap } => {
            for i in 0..len {
                stream.write_all(&[b'a' + (i % 26) as u8])?;
                thread::sleep(gap);
            }
            stream.shutdown(Shutdown::Write)?;
            io::copy(&mut stream, &mut io::sink()).map(drop)
        }
    }
}
