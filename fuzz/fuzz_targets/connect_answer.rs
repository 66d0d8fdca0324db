//! The proxy's answer to CONNECT (`proxy::Connect::receive`): the same bytes
//! fed whole, a byte at a time, and in pieces cut where the input says, must
//! end the same way (tunnel open with the same first bytes, still waiting, or
//! the same failure), and what a failure says is one printable line without
//! the password.
#![no_main]

use fuzz_support::{assert_no_secret, assert_printable, SECRET};
use libfuzzer_sys::fuzz_target;
use vers_tunnel::error::{Error, ProxyName, ProxyProblem};
use vers_tunnel::fuzzing::{Connect, Progress, ProxyUrl};
use vers_tunnel::target::Host;

/// How an exchange ended, as a user would tell endings apart.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// 2xx: the tunnel's first bytes (after the header, fed or not).
    Open(Vec<u8>),
    /// The answer's header is not complete; the message if the proxy closed now.
    Waiting(String),
    /// The failure; for `NotHttp` the kind only (it quotes as much of the
    /// first line as had arrived).
    Failed(String),
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, answer)) = data.split_first() else {
        return;
    };
    let url: ProxyUrl = if flags & 1 == 0 {
        "http://proxy.example:3128".parse().unwrap()
    } else {
        format!("http://alice:{SECRET}@proxy.example:3128")
            .parse()
            .unwrap()
    };
    let whole = run(&url, answer, &mut std::iter::once(answer.len()));
    let bytewise = run(&url, answer, &mut std::iter::repeat(1));
    assert_eq!(whole, bytewise, "whole vs a byte at a time: {answer:?}");
    let mut rng = Cuts(fnv1a(data));
    let cut = run(&url, answer, &mut std::iter::from_fn(|| Some(rng.next())));
    assert_eq!(whole, cut, "whole vs pieces: {answer:?}");
});

/// Feeds `answer` to a fresh exchange in pieces of the lengths `sizes` gives,
/// checking every message on the way.
fn run(url: &ProxyUrl, answer: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> Outcome {
    let host = Host::Name("x.vm.vers.sh".into());
    let mut connect = Connect::new(url, &host, 443);
    let debug = format!("{connect:?}");
    assert_no_secret("Connect's Debug", &debug, "");
    // base64("alice:hunter2"), as the request carries it.
    assert!(!debug.contains("YWxpY2U6aHVudGVyMg"), "{debug}");
    let mut rest = answer;
    let echoed = String::from_utf8_lossy(answer).to_ascii_lowercase();
    loop {
        let n = sizes
            .next()
            .unwrap_or(rest.len())
            .clamp(1, rest.len().max(1));
        let (piece, after) = rest.split_at(n.min(rest.len()));
        rest = after;
        match connect.receive(piece) {
            Ok(Progress::Established { mut leftover }) => {
                leftover.extend_from_slice(rest);
                return Outcome::Open(leftover);
            }
            Ok(Progress::NeedMore) if rest.is_empty() => {
                return Outcome::Waiting(message(url, connect.closed(), &echoed));
            }
            Ok(Progress::NeedMore) => {}
            Err(problem) => {
                let kind = match problem {
                    ProxyProblem::NotHttp { .. } => "NotHttp".to_string(),
                    ref other => format!("{other:?}"),
                };
                message(url, problem, &echoed);
                return Outcome::Failed(kind);
            }
        }
    }
}

/// The line the user would read for `problem`, checked.
fn message(url: &ProxyUrl, problem: ProxyProblem, echoed: &str) -> String {
    let line = Error::Proxy {
        proxy: Box::new(ProxyName {
            url: url.to_string(),
            from: "--proxy",
            target: "x.vm.vers.sh:443".into(),
            cut_userinfo: url.cut_userinfo,
        }),
        problem: Box::new(problem),
    }
    .to_string();
    assert_printable("a proxy failure's message", &line);
    // A proxy that writes the password in its own answer may see it quoted.
    if !echoed.contains(SECRET) {
        assert_no_secret("a proxy failure's message", &line, echoed);
    }
    line
}

/// Piece lengths from a seed: mostly short, sometimes long.
struct Cuts(u64);

impl Cuts {
    fn next(&mut self) -> usize {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let r = (self.0 >> 8) as usize;
        match self.0 % 4 {
            0 => 1,
            1 => 1 + r % 8,
            2 => 1 + r % 64,
            _ => 1 + r % 4096,
        }
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}
