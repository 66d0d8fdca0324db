//! stdin and stdout of every kind: /dev/null, regular files, pipes.

use std::fs::File;
use std::process::Stdio;

use crate::util::{self, Behaviour, Prng, World};

const HOST: &str = "x.vm.vers.sh";

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
    let mut cmd = w.tunnel(edge.addr(), HOST);
    let child = cmd
        .stdin(File::open("/dev/null").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    util::assert_clean_output(&out);
    assert_eq!(out.stdout, Prng::bytes(11, 1 << 20));
}

#[test]
fn stdin_from_a_regular_file_is_sent_whole() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let input = Prng::bytes(12, 5 << 20);
    let path = w.dir.path().join("input");
    std::fs::write(&path, &input).unwrap();
    let out = w
        .tunnel(edge.addr(), HOST)
        .stdin(File::open(&path).unwrap())
        .output()
        .unwrap();
    util::assert_clean_output(&out);
    let expected = format!("{} {}\n", util::sha256(&input), input.len());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn stdout_to_a_regular_file_gets_every_byte() {
    let w = World::new();
    let len = 8 << 20;
    let edge = w.edge(HOST, Behaviour::Download { len, seed: 13 });
    let path = w.dir.path().join("output");
    let out = w
        .tunnel(edge.addr(), HOST)
        .stdin(File::open("/dev/null").unwrap())
        .stdout(File::create(&path).unwrap())
        .output()
        .unwrap();
    util::assert_clean_output(&out);
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
    let out = w
        .tunnel(edge.addr(), HOST)
        .stdin(File::open("/dev/null").unwrap())
        .stdout(File::create("/dev/null").unwrap())
        .output()
        .unwrap();
    util::assert_clean_output(&out);
}
