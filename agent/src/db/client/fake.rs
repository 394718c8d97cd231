//! A fake database client for unit tests: answers statements from a table of rules, records
//! every (target, statement), and can refuse connections. Like [`crate::host::FakeExec`] for
//! programs.

use super::{Client, DbError, Rows, Session, Target};
use anyhow::Result;
use std::sync::Mutex;

type Answer = std::result::Result<Rows, (String, String)>;

/// Rules are matched in order: the first whose endpoint filter (a substring of the target's
/// endpoint and user, `""` for any) and SQL prefix match answers. A statement without a rule
/// gets an empty result.
#[derive(Debug, Default)]
pub struct FakeDb {
    rules: Mutex<Vec<(String, String, Answer)>>,
    refuse: Mutex<Vec<(String, DbErrorKind)>>,
    calls: Mutex<Vec<(u64, String, String)>>,
}

#[derive(Debug, Clone)]
enum DbErrorKind {
    Unreachable(String),
    Refused(String, String),
}

impl FakeDb {
    pub fn new() -> Self {
        Self::default()
    }
    /// Statements starting with `sql_prefix` (on any target) answer `rows`.
    pub fn answer(&self, sql_prefix: &str, rows: Rows) {
        self.answer_at("", sql_prefix, rows);
    }
    /// Like [`FakeDb::answer`], only for targets whose description contains `at`.
    pub fn answer_at(&self, at: &str, sql_prefix: &str, rows: Rows) {
        self.rules
            .lock()
            .expect("fake db lock")
            .push((at.into(), sql_prefix.into(), Ok(rows)));
    }
    /// Statements starting with `sql_prefix` fail with the server error `code`, `message`.
    pub fn fail(&self, at: &str, sql_prefix: &str, code: &str, message: &str) {
        self.rules.lock().expect("fake db lock").push((
            at.into(),
            sql_prefix.into(),
            Err((code.into(), message.into())),
        ));
    }
    /// Connections to targets containing `at` find nobody listening.
    pub fn unreachable(&self, at: &str, reason: &str) {
        self.refuse
            .lock()
            .expect("fake db lock")
            .push((at.into(), DbErrorKind::Unreachable(reason.into())));
    }
    /// Connections to targets containing `at` are refused at login.
    pub fn refuse_login(&self, at: &str, code: &str, message: &str) {
        self.refuse
            .lock()
            .expect("fake db lock")
            .push((at.into(), DbErrorKind::Refused(code.into(), message.into())));
    }
    /// Forget the refusals (the server came up, the account was fixed).
    pub fn accept_all(&self) {
        self.refuse.lock().expect("fake db lock").clear();
    }
    /// "target: sql" for every statement run.
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("fake db lock")
            .iter()
            .map(|(_, t, s)| format!("{t}: {s}"))
            .collect()
    }
    /// (sequence number shared with `FakeExec`, "target: sql").
    pub fn sequenced_calls(&self) -> Vec<(u64, String)> {
        self.calls
            .lock()
            .expect("fake db lock")
            .iter()
            .map(|(n, t, s)| (*n, format!("{t}: {s}")))
            .collect()
    }
    /// The statements only.
    pub fn statements(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("fake db lock")
            .iter()
            .map(|(_, _, s)| s.clone())
            .collect()
    }

    fn run(&self, t: &Target, sql: &str) -> Result<Rows> {
        let who = describe(t);
        self.calls.lock().expect("fake db lock").push((
            crate::host::fake_seq(),
            who.clone(),
            sql.to_string(),
        ));
        for (at, prefix, ans) in self.rules.lock().expect("fake db lock").iter() {
            if who.contains(at.as_str()) && sql.starts_with(prefix.as_str()) {
                return match ans {
                    Ok(r) => Ok(r.clone()),
                    Err((code, message)) => Err(DbError::Statement {
                        endpoint: t.endpoint.to_string(),
                        sql: sql.to_string(),
                        code: code.clone(),
                        message: message.clone(),
                    }
                    .into()),
                };
            }
        }
        Ok(Rows::default())
    }
}

/// "endpoint as user" (plus " replication" for a replication session): what rules match.
fn describe(t: &Target) -> String {
    format!("{t}{}", if t.replication { " replication" } else { "" })
}

/// A session of a [`FakeDb`].
pub struct FakeSession<'a> {
    db: &'a FakeDb,
    target: Target,
}

impl Session for FakeSession<'_> {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        self.db.run(&self.target, sql)
    }
}

impl Client for FakeDb {
    fn connect(&self, t: &Target) -> Result<Box<dyn Session + '_>> {
        let who = describe(t);
        for (at, kind) in self.refuse.lock().expect("fake db lock").iter() {
            if who.contains(at.as_str()) {
                return Err(match kind {
                    DbErrorKind::Unreachable(r) => DbError::Unreachable {
                        endpoint: t.endpoint.to_string(),
                        reason: r.clone(),
                    },
                    DbErrorKind::Refused(code, message) => DbError::Refused {
                        endpoint: t.endpoint.to_string(),
                        user: t.user.clone(),
                        code: code.clone(),
                        message: message.clone(),
                    },
                }
                .into());
            }
        }
        Ok(Box::new(FakeSession {
            db: self,
            target: t.clone(),
        }))
    }
}
