//! Small builders over the `nftables` crate's JSON schema, so the ruleset
//! in [`super::render`] reads like the nft rules it makes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, Range,
};
use nftables::schema::{Chain, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table};
use nftables::stmt::{JumpTarget, Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

pub(crate) type Expr = Expression<'static>;
pub(crate) type Stmt = Statement<'static>;

/// The objects of one table, added to a batch in order.
pub(crate) struct TableBuilder<'b> {
    pub(crate) batch: &'b mut Batch<'static>,
    pub(crate) family: NfFamily,
    pub(crate) table: String,
}

impl TableBuilder<'_> {
    /// `add table; delete table; add table`: in one transaction this
    /// replaces whatever was there (or nothing) with an empty table.
    pub(crate) fn replace_table(&mut self) {
        let table = || {
            NfListObject::Table(Table {
                family: self.family,
                name: self.table.clone().into(),
                handle: None,
            })
        };
        self.batch.add(table());
        self.batch.delete(table());
        self.batch.add(table());
    }

    /// `add table; delete table`: the table is gone, whether it was there.
    pub(crate) fn delete_table(&mut self) {
        let table = || {
            NfListObject::Table(Table {
                family: self.family,
                name: self.table.clone().into(),
                handle: None,
            })
        };
        self.batch.add(table());
        self.batch.delete(table());
    }

    /// A base chain on `hook` with policy accept: Berth only drops what it
    /// governs and leaves other traffic to other tables.
    pub(crate) fn base_chain(&mut self, name: &str, kind: NfChainType, hook: NfHook, prio: i32) {
        self.batch.add(NfListObject::Chain(Chain {
            family: self.family,
            table: self.table.clone().into(),
            name: name.to_string().into(),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
    }

    /// A regular chain, for jumps.
    pub(crate) fn chain(&mut self, name: &str) {
        self.batch.add(NfListObject::Chain(Chain {
            family: self.family,
            table: self.table.clone().into(),
            name: name.to_string().into(),
            ..Chain::default()
        }));
    }

    /// A named set with its elements (an empty set is fine).
    pub(crate) fn set(&mut self, name: &str, kind: SetType, interval: bool, elems: Vec<Expr>) {
        self.batch.add(NfListObject::Set(Box::new(Set {
            family: self.family,
            table: self.table.clone().into(),
            name: name.to_string().into(),
            set_type: SetTypeValue::Single(kind),
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            elem: (!elems.is_empty()).then(|| Cow::Owned(elems)),
            ..Set::default()
        })));
    }

    /// A named set of concatenated elements (`type a . b . c`).
    pub(crate) fn set_concat(&mut self, name: &str, kinds: &[SetType], elems: Vec<Expr>) {
        self.batch.add(NfListObject::Set(Box::new(Set {
            family: self.family,
            table: self.table.clone().into(),
            name: name.to_string().into(),
            set_type: SetTypeValue::Concatenated(Cow::Owned(kinds.to_vec())),
            elem: (!elems.is_empty()).then(|| Cow::Owned(elems)),
            ..Set::default()
        })));
    }

    /// A rule at the end of `chain`.
    pub(crate) fn rule(&mut self, chain: &str, comment: Option<&str>, stmts: Vec<Stmt>) {
        self.batch.add(NfListObject::Rule(Rule {
            family: self.family,
            table: self.table.clone().into(),
            chain: chain.to_string().into(),
            expr: Cow::Owned(stmts),
            comment: comment.map(|c| Cow::Owned(c.to_string())),
            ..Rule::default()
        }));
    }
}

pub(crate) fn payload(protocol: &'static str, field: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

pub(crate) fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(crate) fn ct_state() -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: "state".into(),
        family: None,
        dir: None,
    }))
}

pub(crate) fn ct_status() -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: "status".into(),
        family: None,
        dir: None,
    }))
}

/// `dnat ip to ADDR:PORT`.
pub(crate) fn dnat(addr: Ipv4Addr, port: u16) -> Stmt {
    Statement::DNAT(Some(nftables::stmt::NAT {
        addr: Some(ip(addr)),
        family: Some(nftables::stmt::NATFamily::IP),
        port: Some(Expression::Number(u32::from(port))),
        flags: None,
    }))
}

/// `a . b . c`.
pub(crate) fn concat(parts: Vec<Expr>) -> Expr {
    Expression::Named(NamedExpression::Concat(parts))
}

pub(crate) fn string(s: impl ToString) -> Expr {
    Expression::String(s.to_string().into())
}

pub(crate) fn set_ref(name: &str) -> Expr {
    string(format!("@{name}"))
}

pub(crate) fn ip(addr: Ipv4Addr) -> Expr {
    string(addr)
}

pub(crate) fn prefix(net: Ipv4Net) -> Expr {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(ip(net.network())),
        len: u32::from(net.prefix_len()),
    }))
}

pub(crate) fn ports(from: u16, to: u16) -> Expr {
    if from == to {
        Expression::Number(u32::from(from))
    } else {
        Expression::Range(Box::new(Range {
            range: [
                Expression::Number(u32::from(from)),
                Expression::Number(u32::from(to)),
            ],
        }))
    }
}

fn matches(op: Operator, left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match { left, right, op })
}

pub(crate) fn eq(left: Expr, right: Expr) -> Stmt {
    matches(Operator::EQ, left, right)
}

pub(crate) fn ne(left: Expr, right: Expr) -> Stmt {
    matches(Operator::NEQ, left, right)
}

pub(crate) fn is_in(left: Expr, right: Expr) -> Stmt {
    matches(Operator::IN, left, right)
}

pub(crate) fn list(items: &[&str]) -> Expr {
    Expression::List(items.iter().map(string).collect())
}

pub(crate) fn accept() -> Stmt {
    Statement::Accept(None)
}

pub(crate) fn drop() -> Stmt {
    Statement::Drop(None)
}

/// Back to the chain that jumped here.
pub(crate) fn ret() -> Stmt {
    Statement::Return(None)
}

pub(crate) fn jump(chain: &str) -> Stmt {
    Statement::Jump(JumpTarget {
        target: chain.to_string().into(),
    })
}

pub(crate) fn masquerade() -> Stmt {
    Statement::Masquerade(None)
}
