//! One module per subcommand.

pub mod bench_relay;
pub mod keys;
pub mod loadtest;
pub mod media;
pub mod nodes;
pub mod rooms;
pub mod serve;
pub mod token;
pub mod turn;
