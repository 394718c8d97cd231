//! A replica of this host's own database server, in the new datadir, under a unit of dbhost's
//! (`dbhost-replica.service`, transient: gone after a reboot, started again by a re-run) on a
//! socket of its own. It is how `apply` relocates a running server when the engine allows: the
//! copy is made and kept current while the server runs; the downtime is stop → the replica has
//! the last change → stop the replica → switch → start, whatever the size of the data.
//!
//! * [`pg`]: PostgreSQL (always): pg_basebackup with a slot, streaming; the shutdown checkpoint
//!   proves the replica complete.
//! * [`mariadb`]: MariaDB with binary logs on (and TCP on loopback): mariabackup, a GTID replica;
//!   before the stop the server goes read-only and the replica must reach its
//!   `@@gtid_binlog_pos`.

pub mod mariadb;
pub mod pg;

use super::engine::{Engine, Wait};
use super::relocate::RelocateState;
use crate::host::{Exec, Host};
use anyhow::Result;
use std::time::Duration;

/// dbhost's unit for the replica (transient, made by `systemd-run`).
pub const UNIT: &str = "dbhost-replica.service";
/// Its socket directory (the unit's RuntimeDirectory).
pub const SOCKET_DIR: &str = "/run/dbhost-replica";

pub use pg::basebackup_command;

/// Can this host relocate the instance through a replica? `Err` says why not.
pub fn usable(host: &Host, exec: &dyn Exec, inst: &super::engine::Instance) -> Result<(), String> {
    match inst.engine {
        Engine::Postgresql => pg::usable(host, exec, inst),
        Engine::Mariadb => mariadb::usable(host, exec, inst),
        Engine::Mysql => Err("MySQL moves by file copy (mariabackup is MariaDB's)".into()),
    }
}

/// Copy the running server into the new datadir.
pub fn clone(host: &Host, exec: &dyn Exec, st: &mut RelocateState) -> Result<String> {
    match st.engine() {
        Engine::Postgresql => pg::clone(host, exec, &st.instance, &st.new_datadir),
        _ => mariadb::clone(host, exec, st),
    }
}

/// Start the replica (when it does not run) and wait until it follows the server.
pub fn follow(host: &Host, exec: &dyn Exec, st: &RelocateState, w: &Wait) -> Result<()> {
    match st.engine() {
        Engine::Postgresql => pg::follow(host, exec, &st.instance, &st.new_datadir, w),
        _ => mariadb::follow(host, exec, st, w),
    }
}

/// With the server still running, right before its stop: what the engine needs so the
/// replica provably has everything (MariaDB: read-only, sessions ended, its last GTID
/// reached). PostgreSQL needs nothing: the stop itself sends the shutdown checkpoint.
pub fn before_stop(
    host: &Host,
    exec: &dyn Exec,
    st: &mut RelocateState,
    w: &Wait,
    save: &mut dyn FnMut(&RelocateState) -> Result<()>,
) -> Result<String> {
    match st.engine() {
        Engine::Postgresql => Ok(String::new()),
        _ => mariadb::before_stop(host, exec, st, w, save),
    }
}

/// With the server stopped: the replica has the last change, stops, and becomes a plain
/// datadir the server's unit starts.
pub fn catch_up(
    host: &Host,
    exec: &dyn Exec,
    st: &mut RelocateState,
    w: &Wait,
    limit: Duration,
) -> Result<String> {
    match st.engine() {
        Engine::Postgresql => pg::catch_up(
            host,
            exec,
            &st.instance,
            &st.old_datadir,
            &st.new_datadir,
            w,
            limit,
        ),
        _ => mariadb::catch_up(host, exec, st, w),
    }
}

/// The replica is done with the server (caught up, stopped, a plain datadir).
pub fn done(host: &Host, st: &RelocateState) -> bool {
    match st.engine() {
        Engine::Postgresql => pg::promoted_offline(host, &st.new_datadir),
        _ => st.caught_up,
    }
}

/// Stop the replica.
pub fn stop(exec: &dyn Exec, w: &Wait) -> Result<bool> {
    super::engine::stop(exec, UNIT, w)
}

/// After a rollback started the server on its old datadir again: what only the replica needed
/// goes (PostgreSQL: its slot; MariaDB: the fence, the replication account).
pub fn after_rollback(host: &Host, exec: &dyn Exec, st: &RelocateState) -> Result<()> {
    match st.engine() {
        Engine::Postgresql => pg::drop_slot(host, exec, &st.instance),
        _ => mariadb::after_rollback(host, exec, st),
    }
}
