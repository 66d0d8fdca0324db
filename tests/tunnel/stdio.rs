//! stdin and stdout of every kind: /dev/null, regular files, pipes.

use std::fs::File;
use std::process::Stdio;

use crate::util::{self, Behaviour, Prng, World, HOST};

#[test]
fn stdin_from_dev_null_still_receives_everything() {
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1 << 20,
            seed: 11,
        },
    );
    let run = util::run_as_set(
        w.tunnel(edge.addr(), HOST)
            .stdin(File::open("/dev/null").unwrap())
            .stdout(Stdio::piped()),
    );
    run.assert_clean();
    assert_eq!(run.stdout, Prng::bytes(11, 1 << 20));
}

#[test]
fn stdin_from_a_regular_file_is_sent_whole() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let input = Prng::bytes(12, 5 << 20);
    let path = w.dir.path().join("input");
    std::fs::write(&path, &input).unwrap();
    let run = util::run_as_set(
        w.tunnel(edge.addr(), HOST)
            .stdin(File::open(&path).unwrap())
            .stdout(Stdio::piped()),
    );
    run.assert_clean();
    let expected = format!("{} {}\n", util::sha256(&input), input.len());
    assert_eq!(String::from_utf8_lossy(&run.stdout), expected);
}

#[test]
fn stdout_to_a_regular_file_gets_every_byte() {
    let w = World::new();
    let len = 8 << 20;
    let edge = w.edge(HOST, Behaviour::Download { len, seed: 13 });
    let path = w.dir.path().join("output");
    let run = util::run_as_set(
        w.tunnel(edge.addr(), HOST)
            .stdin(File::open("/dev/null").unwrap())
            .stdout(File::create(&path).unwrap()),
    );
    run.assert_clean();
    let got = std::fs::read(&path).unwrap();
    assert_eq!(
        util::sha256(&got),
        util::sha256(&Prng::bytes(13, len as usize))
    );
}

#[test]
fn stdout_to_dev_null_is_accepted() {
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1 << 20,
            seed: 14,
        },
    );
    let run = util::run_as_set(
        w.tunnel(edge.addr(), HOST)
            .stdin(File::open("/dev/null").unwrap())
            .stdout(File::create("/dev/null").unwrap()),
    );
    run.assert_clean();
}
