//! The records the server answers from: a snapshot, built whole and
//! swapped in at once. Pure: [`Records::lookup`] turns a query into the
//! records of an answer, or says the name is not ours.
//!
//! Names compare without case and without the final dot. A zone (a
//! Cloud Map namespace, the tasks' private DNS domain) is authoritative:
//! a name below it that has no records is NXDOMAIN; a name that has
//! records, but not of the asked type, has no answer (NODATA). A name
//! outside every zone that is not an extra name is not ours (the server
//! forwards or refuses it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

/// At most this many records in one answer (Route 53's multivalue limit).
pub const MAX_ANSWERS: usize = 8;
/// The negative-caching TTL of a zone unless it says otherwise
/// (Cloud Map's SOA default).
pub const DEFAULT_NEGATIVE_TTL: u32 = 15;

/// A name's A records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ASet {
    pub addresses: Vec<Ipv4Addr>,
    pub ttl: u32,
    /// At most this many in one answer (8 for multivalue, 1 for weighted).
    pub limit: usize,
}

/// One target of a name's SRV records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// A name this snapshot has A records for (they go in the additional
    /// section).
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvSet {
    pub targets: Vec<SrvTarget>,
    pub ttl: u32,
    pub limit: usize,
}

/// The records of every zone and extra name; what the server answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// Zone → its negative TTL.
    zones: BTreeMap<String, u32>,
    a: BTreeMap<String, ASet>,
    srv: BTreeMap<String, SrvSet>,
}

/// How a query is answered from the records.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The answer and additional records (possibly none: NODATA).
    Found { answers: Vec<Record>, additionals: Vec<Record> },
    /// The name is in `zone` but has no records: NXDOMAIN, with the
    /// zone's SOA for negative caching.
    NxDomain { soa: Box<Record> },
    /// Not a name of these records.
    NotOurs,
}

/// The key of a name: lower case, no final dot.
pub fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Records {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `zone` authoritative (negative TTL `negative_ttl` seconds).
    pub fn add_zone(&mut self, zone: &str, negative_ttl: u32) -> &mut Self {
        self.zones.insert(key(zone), negative_ttl);
        self
    }

    /// Adds `addresses` to `name`'s A records (the lowest TTL and limit
    /// given for the name win; duplicates are kept once).
    pub fn add_a(&mut self, name: &str, addresses: impl IntoIterator<Item = Ipv4Addr>, ttl: u32, limit: usize) -> &mut Self {
        let set = self.a.entry(key(name)).or_insert(ASet { addresses: Vec::new(), ttl, limit });
        set.ttl = set.ttl.min(ttl);
        set.limit = set.limit.min(limit).max(1);
        for a in addresses {
            if !set.addresses.contains(&a) {
                set.addresses.push(a);
            }
        }
        self
    }

    pub fn add_srv(&mut self, name: &str, targets: impl IntoIterator<Item = SrvTarget>, ttl: u32, limit: usize) -> &mut Self {
        let set = self.srv.entry(key(name)).or_insert(SrvSet { targets: Vec::new(), ttl, limit });
        set.ttl = set.ttl.min(ttl);
        set.limit = set.limit.min(limit).max(1);
        set.targets.extend(targets);
        self
    }

    pub fn a(&self, name: &str) -> Option<&ASet> {
        self.a.get(&key(name))
    }

    pub fn srv(&self, name: &str) -> Option<&SrvSet> {
        self.srv.get(&key(name))
    }

    /// The zone `name` is in (the longest that matches).
    pub fn zone_of(&self, name: &str) -> Option<(&str, u32)> {
        let name = key(name);
        let mut rest = name.as_str();
        loop {
            if let Some((z, ttl)) = self.zones.get_key_value(rest) {
                return Some((z.as_str(), *ttl));
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Answers a query for `name` (as asked: the answer keeps its case)
    /// of type `kind`. `turn` rotates which records come first, so that
    /// clients taking the first address spread over all of them.
    pub fn lookup(&self, name: &Name, kind: RecordType, turn: usize) -> Lookup {
        let ascii = name.to_ascii();
        let k = key(&ascii);
        let a = self.a.get(&k);
        let srv = self.srv.get(&k);
        if a.is_none() && srv.is_none() {
            return match self.zone_of(&k) {
                Some((zone, ttl)) => Lookup::NxDomain { soa: Box::new(soa(zone, ttl)) },
                None => Lookup::NotOurs,
            };
        }
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        match (kind, a, srv) {
            (RecordType::A | RecordType::ANY, Some(set), _) => {
                for ip in rotate(&set.addresses, turn, set.limit) {
                    answers.push(Record::from_rdata(name.clone(), set.ttl, RData::A(A(*ip))));
                }
            }
            (RecordType::SRV | RecordType::ANY, _, Some(set)) => {
                for t in rotate(&set.targets, turn, set.limit) {
                    let Ok(target) = Name::from_ascii(format!("{}.", t.target)) else { continue };
                    answers.push(Record::from_rdata(
                        name.clone(),
                        set.ttl,
                        RData::SRV(SRV::new(t.priority, t.weight, t.port, target.clone())),
                    ));
                    if let Some(ips) = self.a.get(&key(&t.target)) {
                        for ip in ips.addresses.iter().take(MAX_ANSWERS) {
                            additionals.push(Record::from_rdata(target.clone(), ips.ttl, RData::A(A(*ip))));
                        }
                    }
                }
            }
            _ => {}
        }
        Lookup::Found { answers, additionals }
    }
}

/// At most `limit` of `items`, starting at `turn` (mod their number).
fn rotate<T>(items: &[T], turn: usize, limit: usize) -> impl Iterator<Item = &T> {
    let n = items.len().max(1);
    items.iter().cycle().skip(turn % n).take(items.len().min(limit))
}

/// The SOA record of a zone Berth serves.
fn soa(zone: &str, negative_ttl: u32) -> Record {
    let zone_name = Name::from_ascii(format!("{zone}.")).unwrap_or_else(|_| Name::root());
    let named = |label: &str| Name::from_ascii(format!("{label}.{zone}.")).unwrap_or_else(|_| zone_name.clone());
    let rdata = SOA::new(named("ns"), named("hostmaster"), 1, 7200, 900, 1_209_600, negative_ttl);
    Record::from_rdata(zone_name, negative_ttl, RData::SOA(rdata))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn sample() -> Records {
        let mut r = Records::new();
        r.add_zone("corp.local", 30)
            .add_a("api.corp.local", (1..=10).map(ip), 10, MAX_ANSWERS)
            .add_a("one.corp.local", [ip(1), ip(2)], 60, 1)
            .add_a("t1.api.corp.local", [ip(1)], 10, MAX_ANSWERS)
            .add_srv("api.corp.local", [SrvTarget { priority: 1, weight: 1, port: 8080, target: "t1.api.corp.local".into() }], 20, MAX_ANSWERS)
            .add_a("internal-lb-1.us-east-1.elb.amazonaws.com", [ip(99)], 60, MAX_ANSWERS);
        r
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn a_answers(l: &Lookup) -> Vec<Ipv4Addr> {
        let Lookup::Found { answers, .. } = l else { panic!("{l:?}") };
        answers.iter().filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        }).collect()
    }

    #[test]
    fn lookups_by_name_and_type() {
        let r = sample();
        // (query name, type, answers, additionals) — or NXDOMAIN / not ours.
        enum Want {
            Found(usize, usize),
            Nx,
            NotOurs,
        }
        let cases = [
            ("api.corp.local.", RecordType::A, Want::Found(8, 0)),
            ("API.Corp.Local.", RecordType::A, Want::Found(8, 0)),
            ("one.corp.local.", RecordType::A, Want::Found(1, 0)),
            ("api.corp.local.", RecordType::SRV, Want::Found(1, 1)),
            ("api.corp.local.", RecordType::AAAA, Want::Found(0, 0)),
            ("t1.api.corp.local.", RecordType::SRV, Want::Found(0, 0)),
            ("nope.corp.local.", RecordType::A, Want::Nx),
            ("corp.local.", RecordType::A, Want::Nx),
            ("deep.nope.corp.local.", RecordType::A, Want::Nx),
            ("example.com.", RecordType::A, Want::NotOurs),
            ("xcorp.local.", RecordType::A, Want::NotOurs),
            ("internal-lb-1.us-east-1.elb.amazonaws.com.", RecordType::A, Want::Found(1, 0)),
            ("other.us-east-1.elb.amazonaws.com.", RecordType::A, Want::NotOurs),
        ];
        for (q, t, want) in cases {
            let got = r.lookup(&name(q), t, 0);
            match (&got, want) {
                (Lookup::Found { answers, additionals }, Want::Found(n, m)) => {
                    assert_eq!((answers.len(), additionals.len()), (n, m), "{q} {t}");
                    // The answer keeps the case it was asked in.
                    assert!(answers.iter().all(|a| a.name.to_ascii() == q), "{q}");
                }
                (Lookup::NxDomain { soa }, Want::Nx) => assert_eq!(soa.ttl, 30, "{q}"),
                (Lookup::NotOurs, Want::NotOurs) => {}
                (got, _) => panic!("{q} {t}: {got:?}"),
            }
        }
    }

    #[test]
    fn answers_rotate_over_every_address_and_srv_carries_its_target() {
        let r = sample();
        let first: Vec<_> = (0..10).map(|turn| a_answers(&r.lookup(&name("api.corp.local."), RecordType::A, turn))[0]).collect();
        assert_eq!(first, (1..=10).map(ip).collect::<Vec<_>>());
        let Lookup::Found { answers, additionals } = r.lookup(&name("api.corp.local."), RecordType::SRV, 0) else { panic!() };
        let RData::SRV(srv) = &answers[0].data else { panic!() };
        assert_eq!((srv.priority, srv.weight, srv.port, srv.target.to_ascii()), (1, 1, 8080, "t1.api.corp.local.".to_owned()));
        assert_eq!(answers[0].ttl, 20);
        assert_eq!(additionals[0].name.to_ascii(), "t1.api.corp.local.");
        assert_eq!(a_answers(&Lookup::Found { answers: additionals, additionals: vec![] }), [ip(1)]);
    }

    #[test]
    fn adding_merges_a_name_and_keys_ignore_case() {
        let mut r = Records::new();
        r.add_a("A.corp.local.", [ip(1)], 30, 8).add_a("a.CORP.local", [ip(1), ip(2)], 10, 8);
        assert_eq!(r.a("a.corp.local").unwrap(), &ASet { addresses: vec![ip(1), ip(2)], ttl: 10, limit: 8 });
        r.add_zone("Corp.Local.", 5);
        assert_eq!(r.zone_of("x.y.corp.local."), Some(("corp.local", 5)));
        assert_eq!(key("Foo.Bar."), "foo.bar");
    }
}
