//! `backup prune`: which backups a retention policy keeps (pure; the clock is an argument).
//!
//! Kept: the newest `keep-last` complete backups; the newest backup of each of the newest
//! `keep-daily` UTC days that have one; the same per ISO week for `keep-weekly`. Whatever the
//! policy: the newest complete backup, the newest *verified* backup (the one a restore should
//! use; wal-g#636 deleted the newest after an upgrade), and anything dated after `now` (a skewed
//! clock is no reason to delete). No `keep-*` at all keeps everything. Partial directories are
//! deleted once older than the stale age (the backup run cleans its own sooner).

use crate::profile::backup::Retention;
use std::collections::{BTreeMap, BTreeSet};

/// What prune needs to know about one backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    /// Seconds since the epoch (from the id).
    pub time: i64,
    pub complete: bool,
    pub verified_ok: bool,
}

/// The verdict for every item, with the reasons a kept one is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub keep: BTreeMap<String, Vec<String>>,
    pub delete: Vec<String>,
}

fn day(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// Weeks start on Monday (1970-01-01 was a Thursday).
fn week(t: i64) -> i64 {
    (day(t) + 3).div_euclid(7)
}

/// The newest item of each of the newest `n` buckets.
fn newest_per_bucket<'a>(complete: &[&'a Item], n: u32, bucket: fn(i64) -> i64) -> Vec<&'a Item> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    // `complete` is newest first.
    for it in complete {
        if seen.len() as u32 >= n && !seen.contains(&bucket(it.time)) {
            break;
        }
        if seen.insert(bucket(it.time)) {
            out.push(*it);
        }
    }
    out
}

pub fn decide(items: &[Item], policy: &Retention, now: i64, stale_partial_secs: i64) -> Decision {
    let mut d = Decision::default();
    let mut complete: Vec<&Item> = items.iter().filter(|i| i.complete).collect();
    complete.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let mut keep = |it: &Item, why: String| d.keep.entry(it.id.clone()).or_default().push(why);
    let any_rule =
        policy.keep_last.is_some() || policy.keep_daily.is_some() || policy.keep_weekly.is_some();
    for it in &complete {
        if !any_rule {
            keep(it, "no retention rule".into());
        }
        if it.time > now {
            keep(it, "dated in the future".into());
        }
    }
    if let Some(first) = complete.first() {
        keep(first, "newest".into());
    }
    if let Some(v) = complete.iter().find(|i| i.verified_ok) {
        keep(v, "newest verified".into());
    }
    if let Some(n) = policy.keep_last {
        for it in complete.iter().take(n as usize) {
            keep(it, format!("keep-last {n}"));
        }
    }
    if let Some(n) = policy.keep_daily {
        for it in newest_per_bucket(&complete, n, day) {
            keep(it, format!("keep-daily {n}"));
        }
    }
    if let Some(n) = policy.keep_weekly {
        for it in newest_per_bucket(&complete, n, week) {
            keep(it, format!("keep-weekly {n}"));
        }
    }
    for it in items {
        let kept = d.keep.contains_key(&it.id);
        let stale = !it.complete && now - it.time > stale_partial_secs;
        if (it.complete && !kept) || stale {
            d.delete.push(it.id.clone());
        }
    }
    d.delete.sort();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    // 2026-11-16 00:00:00 UTC, a Monday.
    const MON: i64 = 1_794_787_200;

    fn item(t: i64, verified_ok: bool) -> Item {
        Item {
            id: crate::backup::manifest::new_id(
                t,
                "mariadb",
                crate::backup::manifest::Kind::Logical,
            )[..16]
                .to_string()
                + &format!("-{t}"),
            time: t,
            complete: true,
            verified_ok,
        }
    }

    fn policy(last: Option<u32>, daily: Option<u32>, weekly: Option<u32>) -> Retention {
        Retention {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
        }
    }

    #[test]
    fn monday_is_the_start_of_a_week() {
        assert_eq!(crate::civil::utc(MON).0, 2026);
        assert_eq!(week(MON), week(MON + 6 * DAY + 86_399));
        assert_ne!(week(MON), week(MON - 1));
    }

    #[test]
    fn no_rule_keeps_everything() {
        let items: Vec<Item> = (0..5).map(|i| item(MON + i * DAY, false)).collect();
        let d = decide(&items, &policy(None, None, None), MON + 10 * DAY, 7 * DAY);
        assert!(d.delete.is_empty());
        assert_eq!(d.keep.len(), 5);
    }

    #[test]
    fn keep_last_daily_weekly_over_five_weeks_of_nightlies() {
        // Two backups a day (02:00 and 14:00) for 35 days.
        let mut items = Vec::new();
        for day_no in 0..35 {
            items.push(item(MON + day_no * DAY + 2 * 3600, false));
            items.push(item(MON + day_no * DAY + 14 * 3600, false));
        }
        let now = MON + 35 * DAY;
        let d = decide(&items, &policy(Some(3), Some(7), Some(4)), now, 7 * DAY);
        let kept: Vec<i64> = items
            .iter()
            .filter(|i| d.keep.contains_key(&i.id))
            .map(|i| i.time)
            .collect();
        // last 3: day 34 14:00, day 34 02:00, day 33 14:00
        // daily 7: the 14:00 of days 28-34
        // weekly 4: the newest of weeks 1-4 (days 7-13, 14-20, 21-27, 28-34) = 14:00 of days 13, 20, 27, 34
        let mut want: Vec<i64> = vec![MON + 34 * DAY + 2 * 3600];
        for d in [13, 20, 27, 28, 29, 30, 31, 32, 33, 34] {
            want.push(MON + d * DAY + 14 * 3600);
        }
        want.sort();
        assert_eq!(kept, want);
        assert_eq!(d.delete.len(), items.len() - want.len());
        assert!(d.keep[&items.last().unwrap().id]
            .iter()
            .any(|r| r == "newest"));
    }

    #[test]
    fn the_newest_verified_backup_survives_any_policy() {
        let mut items: Vec<Item> = (0..10).map(|i| item(MON + i * DAY, false)).collect();
        items[2].verified_ok = true;
        items[6].verified_ok = true;
        let d = decide(
            &items,
            &policy(Some(1), None, None),
            MON + 20 * DAY,
            7 * DAY,
        );
        let kept: BTreeSet<&str> = d.keep.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            BTreeSet::from([items[9].id.as_str(), items[6].id.as_str()])
        );
        assert_eq!(d.keep[&items[6].id], vec!["newest verified".to_string()]);
        assert!(
            d.delete.contains(&items[2].id),
            "an older verified one may go"
        );
        // Even keep-last 0 keeps the newest and the newest verified.
        let d = decide(
            &items,
            &policy(Some(0), None, None),
            MON + 20 * DAY,
            7 * DAY,
        );
        assert_eq!(d.keep.len(), 2);
    }

    #[test]
    fn the_clock_decides_staleness_and_protects_the_future() {
        let mut items: Vec<Item> = (0..3).map(|i| item(MON + i * DAY, false)).collect();
        let mut partial = item(MON + DAY / 2, false);
        partial.complete = false;
        items.push(partial.clone());
        let future = item(MON + 30 * DAY, false);
        items.push(future.clone());
        // Three days later the partial is not stale yet.
        let d = decide(&items, &policy(Some(1), None, None), MON + 3 * DAY, 7 * DAY);
        assert!(!d.delete.contains(&partial.id));
        assert!(d.keep[&future.id]
            .iter()
            .any(|r| r == "dated in the future"));
        // Ten days later it is; the future-dated backup is now the newest.
        let d = decide(
            &items,
            &policy(Some(1), None, None),
            MON + 10 * DAY,
            7 * DAY,
        );
        assert!(d.delete.contains(&partial.id));
        assert!(d.keep.contains_key(&future.id));
        assert_eq!(d.keep.len(), 1, "{d:?}");
    }

    #[test]
    fn nothing_at_all_is_nothing_to_do() {
        let d = decide(&[], &policy(Some(1), Some(1), Some(1)), MON, 7 * DAY);
        assert_eq!(d, Decision::default());
    }
}
