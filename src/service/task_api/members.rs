//! Room membership: who joined which room, lapsing after a silence.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::api::task::AgentInfo;

/// Joined agents per room. An entry lapses once `ttl` has passed since its
/// last join, claim or heartbeat; lapsed entries are dropped whenever the
/// registry is read or written, so it holds only live members.
#[derive(Debug)]
pub(crate) struct Members {
    ttl: Duration,
    rooms: Mutex<BTreeMap<String, BTreeMap<String, Member>>>,
}

#[derive(Debug)]
struct Member {
    capabilities: Vec<String>,
    last_seen: OffsetDateTime,
}

impl Members {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            rooms: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(
        &self,
        now: OffsetDateTime,
    ) -> MutexGuard<'_, BTreeMap<String, BTreeMap<String, Member>>> {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ttl = self.ttl;
        rooms.retain(|_, agents| {
            agents.retain(|_, m| m.last_seen + ttl > now);
            !agents.is_empty()
        });
        rooms
    }

    /// Records (or refreshes) `agent` in `room` with `capabilities`.
    pub(crate) fn join(
        &self,
        room: &str,
        agent: &str,
        capabilities: Vec<String>,
        now: OffsetDateTime,
    ) -> AgentInfo {
        let mut rooms = self.lock(now);
        rooms.entry(room.to_owned()).or_default().insert(
            agent.to_owned(),
            Member {
                capabilities: capabilities.clone(),
                last_seen: now,
            },
        );
        AgentInfo {
            agent_id: agent.to_owned(),
            capabilities,
            last_seen: now,
        }
    }

    /// Refreshes `agent` in `room` if it is a member.
    pub(crate) fn touch(&self, room: &str, agent: &str, now: OffsetDateTime) {
        let mut rooms = self.lock(now);
        if let Some(member) = rooms.get_mut(room).and_then(|a| a.get_mut(agent)) {
            member.last_seen = now;
        }
    }

    /// Removes `agent` from `room`; whether it was a member.
    pub(crate) fn leave(&self, room: &str, agent: &str, now: OffsetDateTime) -> bool {
        let mut rooms = self.lock(now);
        let Some(agents) = rooms.get_mut(room) else {
            return false;
        };
        let left = agents.remove(agent).is_some();
        if agents.is_empty() {
            rooms.remove(room);
        }
        left
    }

    /// Live members per room, rooms and agents by name.
    pub(crate) fn snapshot(&self, now: OffsetDateTime) -> BTreeMap<String, Vec<AgentInfo>> {
        self.lock(now)
            .iter()
            .map(|(room, agents)| {
                let agents = agents
                    .iter()
                    .map(|(id, m)| AgentInfo {
                        agent_id: id.clone(),
                        capabilities: m.capabilities.clone(),
                        last_seen: m.last_seen,
                    })
                    .collect();
                (room.clone(), agents)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_lapses_after_the_silence_and_activity_refreshes_it() {
        let members = Members::new(Duration::from_secs(60));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        members.join("r", "a", vec!["rust".into()], t0);
        members.join("r", "b", vec![], t0);
        members.touch("r", "a", t0 + Duration::from_secs(50));
        let at = |s| members.snapshot(t0 + Duration::from_secs(s));
        assert_eq!(at(59)["r"].len(), 2);
        let left = at(60);
        assert_eq!(left["r"].len(), 1);
        assert_eq!(left["r"][0].agent_id, "a");
        assert!(at(110).is_empty());
        assert!(!members.leave("r", "a", t0 + Duration::from_secs(111)));
    }
}
