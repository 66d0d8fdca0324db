//! Integration tests: the real `vers-tunnel` binary against a real TLS edge on loopback.

mod util;

mod args;
mod demo;
mod doctor;
mod faults_local;
mod faults_network;
mod faults_trust;
mod forward;
mod forward_clients;
mod hostile;
mod load;
mod multiplex;
mod openssl;
mod parsers;
mod proxy;
mod relay;
mod session;
mod ssh;
mod stdio;
mod trust;
