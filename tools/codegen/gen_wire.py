#!/usr/bin/env python3
"""Generate Berth's AWS wire types from botocore's service models.

botocore's JSON service model is the spec of every AWS API Berth serves.
This script turns one model into a Rust module of serde types (one struct
per structure shape, one enum per enumerated string shape) and an action
enum that parses an operation name and a body into a typed request. The
output is committed; `--check` verifies it is up to date.

What else it writes follows the protocols the model lists
(`metadata.protocols`):
- `json` (AWS JSON 1.0/1.1) and `smithy-rpc-v2-cbor`: serde does both;
  `Action::from_deserializer` parses any serde format (JSON, CBOR).
- `query` (AWS Query) and `ec2` (the EC2 protocol): `FromQuery` for every
  structure an input reaches (members flattened as `Name.member.N...`, or
  `Name.N` for EC2, with EC2's `queryName`/`locationName` rules),
  `ToXml` for every structure an output reaches, `Action::from_query`, and
  an `Output` enum whose `to_xml` writes the whole response document
  (`<OpResponse><OpResult>...` for Query, no result wrapper for EC2).
  The mechanics are `berth_wire::codec`; the generated code only names
  members.
- `rest-json` (restJson1): `ROUTES` (every operation's `http.method` and
  `http.requestUri`), `ERRORS` (every error shape's code, HTTP status and
  message member), `from_rest` on every input structure (members bound by
  `location` read from the path's labels, the query string and headers,
  the rest from the JSON body or the `payload` member), `to_rest` on every
  output structure (headers, status code, body), `Action::from_rest` and
  `Output::to_rest`. Bound members are `#[serde(skip)]`: they are never in
  the body.
- `smithy-rpc-v2-cbor`: timestamp and blob members are marked with
  `codec::cbor`'s `serialize_with`, so a CBOR answer carries tag 1 and byte
  strings while JSON keeps epoch numbers and base64 text.

`--operations A,B,...` keeps only those operations' variants (and the
shapes they reach) for a big model such as EC2's; `Action::NAMES` still
lists every operation of the model, so the edge can tell an operation
Berth does not serve from one that does not exist.

A model shape named like an item the generator writes itself (`Action`,
`Output`: ELBv2 has a structure `Action`) is renamed `<Name>Shape`.

Usage: gen_wire.py SERVICE API_VERSION OUT.rs [--operations A,B,...] [--check]
"""
import gzip
import json
import os
import re
import sys

import botocore

PRIMITIVES = {
    "string": "String",
    "integer": "i32",
    "long": "i64",
    "double": "f64",
    "float": "f64",
    "boolean": "bool",
    "timestamp": "f64",  # AWS JSON 1.1: epoch seconds
    "blob": "String",  # base64 text on the wire
}

RUST_KEYWORDS = {"type", "match", "ref", "self", "static", "struct", "enum", "fn", "mod",
                 "use", "where", "loop", "move", "impl", "trait", "in", "as", "box", "crate",
                 "override", "final", "async", "await", "dyn", "abstract", "become", "do",
                 "macro", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
                 "return", "const", "continue", "break", "else", "extern", "false", "true", "for",
                 "if", "let", "mut", "pub", "super", "unsafe", "while"}


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = s.replace("-", "_").lower()
    if s in RUST_KEYWORDS:
        s = "r#" + s
    return s


def variant(value):
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", value) if p]
    out = []
    for p in parts:
        if p.isupper() or p.islower() or p.isdigit():
            out.append(p[:1].upper() + p[1:].lower())
        else:
            out.append(p[:1].upper() + p[1:])
    name = "".join(out) or "Empty"
    if name[0].isdigit():
        name = "V" + name
    if name == "Self":
        name = "Self_"
    return name


def load(service, version):
    path = os.path.join(os.path.dirname(botocore.__file__), "data", service, version, "service-2.json.gz")
    with gzip.open(path) as f:
        return json.load(f)


def rust_type(shapes, name):
    s = shapes[name]
    t = s["type"]
    if t == "string" and "enum" in s:
        return name
    if t in PRIMITIVES:
        return PRIMITIVES[t]
    if t == "list":
        return "Vec<%s>" % rust_type(shapes, s["member"]["shape"])
    if t == "map":
        return "BTreeMap<%s, %s>" % (rust_type(shapes, s["key"]["shape"]), rust_type(shapes, s["value"]["shape"]))
    if t == "structure":
        return name
    raise ValueError("unknown shape type %s for %s" % (t, name))


def reaches(shapes, start, goal):
    """Whether structure `start` contains `goal` by value (through
    structure members only: lists and maps are already indirect)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name in seen or shapes[name]["type"] != "structure":
            continue
        seen.add(name)
        todo.extend(m["shape"] for m in shapes[name]["members"].values())
    return False


def closure(shapes, start, seen):
    """Adds `start` and every shape it reaches to `seen`."""
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        s = shapes[name]
        if s["type"] == "structure":
            todo.extend(m["shape"] for m in s["members"].values())
        elif s["type"] == "list":
            todo.append(s["member"]["shape"])
        elif s["type"] == "map":
            todo.extend([s["key"]["shape"], s["value"]["shape"]])


def query_name(member, mname, flavour):
    """The name of a member in a Query request (botocore's serializers)."""
    if flavour == "ec2":
        if "queryName" in member:
            return member["queryName"]
        if "locationName" in member:
            n = member["locationName"]
            return n[:1].upper() + n[1:]
        return mname
    return member.get("locationName", mname)


def query_expr(shapes, shape, k, flavour, depth=0):
    """A Rust expression reading `shape` at key expression `k` from `q`:
    `Result<Option<T>, QueryError>`."""
    s = shapes[shape]
    t = s["type"]
    if t == "structure":
        return "q.structure::<%s>(%s)" % (shape, k)
    if t == "timestamp":
        return "q.timestamp(%s)" % k
    if t == "list":
        m = s["member"]
        v = "k%d" % depth
        if flavour == "ec2":
            items = "%s" % k
        elif s.get("flattened"):
            items = k if "locationName" not in m else "&q.rename_last(%s, \"%s\")" % (k, m["locationName"])
        else:
            items = "&format!(\"{}.%s\", %s)" % (m.get("locationName", "member"), k)
        inner = query_expr(shapes, m["shape"], "&" + v, flavour, depth + 1)
        return "q.list(%s, %s, |q, %s: String| %s)" % (k, items, v, inner)
    if t == "map":
        kn = s["key"].get("locationName", "key")
        vn = s["value"].get("locationName", "value")
        v = "k%d" % depth
        entries = k if (s.get("flattened") or flavour == "ec2") else "&format!(\"{}.entry\", %s)" % k
        ke = query_expr(shapes, s["key"]["shape"], "&format!(\"{}.%s\", %s)" % (kn, v), flavour, depth + 1)
        ve = query_expr(shapes, s["value"]["shape"], "&format!(\"{}.%s\", %s)" % (vn, v), flavour, depth + 1)
        return "q.map(%s, |q, %s: String| Ok(match (%s?, %s?) { (Some(a), Some(b)) => Some((a, b)), _ => None }))" % (entries, v, ke, ve)
    return "q.scalar::<%s>(%s)" % (rust_type(shapes, shape), k)


def write_from_query(w, shapes, name, flavour):
    s = shapes[name]
    required = set(s.get("required", []))
    w("impl FromQuery for %s {" % name)
    w("    fn from_query(q: &QueryInput, prefix: &str) -> Result<Self, QueryError> {")
    w("        let _ = (&q, &prefix);")
    w("        Ok(Self {")
    for mname, m in s["members"].items():
        qn = query_name(m, mname, flavour)
        expr = query_expr(shapes, m["shape"], '&key(prefix, "%s")' % qn, flavour)
        boxed = shapes[m["shape"]]["type"] == "structure" and reaches(shapes, m["shape"], name)
        if boxed:
            expr = "%s.map(|v| v.map(Box::new))" % expr
        if mname in required:
            w('            %s: q.required(%s?, &key(prefix, "%s"))?,' % (snake(mname), expr, qn))
        else:
            w("            %s: %s?," % (snake(mname), expr))
    w("        })")
    w("    }")
    w("}")
    w("")


def xml_stmt(shapes, shape, v, name, depth=0):
    """Rust statements writing `v` (a reference) as element `name`."""
    s = shapes[shape]
    t = s["type"]
    if t == "structure":
        return 'w.start("%s"); %s.write_members(w); w.end("%s");' % (name, v, name)
    if t == "timestamp":
        return 'w.timestamp("%s", *%s);' % (name, v)
    if t == "list":
        m = s["member"]
        e = "e%d" % depth
        if s.get("flattened"):
            inner = xml_stmt(shapes, m["shape"], e, m.get("locationName", name), depth + 1)
            return "for %s in %s.iter() { %s }" % (e, v, inner)
        inner = xml_stmt(shapes, m["shape"], e, m.get("locationName", "member"), depth + 1)
        return 'w.start("%s"); for %s in %s.iter() { %s } w.end("%s");' % (name, e, v, inner, name)
    if t == "map":
        kn = s["key"].get("locationName", "key")
        vn = s["value"].get("locationName", "value")
        a, b = "a%d" % depth, "b%d" % depth
        entry = 'w.start("entry"); %s %s w.end("entry");' % (
            xml_stmt(shapes, s["key"]["shape"], a, kn, depth + 1), xml_stmt(shapes, s["value"]["shape"], b, vn, depth + 1))
        if s.get("flattened"):
            entry = 'w.start("%s"); %s %s w.end("%s");' % (
                name, xml_stmt(shapes, s["key"]["shape"], a, kn, depth + 1), xml_stmt(shapes, s["value"]["shape"], b, vn, depth + 1), name)
            return "for (%s, %s) in %s.iter() { %s }" % (a, b, v, entry)
        return 'w.start("%s"); for (%s, %s) in %s.iter() { %s } w.end("%s");' % (name, a, b, v, entry, name)
    return 'w.scalar("%s", %s);' % (name, v)


def write_to_xml(w, shapes, name):
    s = shapes[name]
    required = set(s.get("required", []))
    w("impl ToXml for %s {" % name)
    w("    fn write_members(&self, w: &mut XmlWriter) {")
    w("        let _ = &w;")
    for mname, m in s["members"].items():
        xn = m.get("locationName", mname)
        stmt = xml_stmt(shapes, m["shape"], "v", xn)
        if mname in required:
            w("        { let v = &self.%s; %s }" % (snake(mname), stmt))
        else:
            w("        if let Some(v) = &self.%s { %s }" % (snake(mname), stmt))
    w("    }")
    w("}")
    w("")


def ts_format(shapes, m):
    return m.get("timestampFormat", shapes[m["shape"]].get("timestampFormat"))


def rest_read_expr(shapes, m, mname, bound_query):
    """The expression reading bound member `m` from `r` (a RestRequest):
    `Result<Option<T>, RestError>`."""
    loc, ln = m["location"], m.get("locationName", mname)
    s = shapes[m["shape"]]
    t = s["type"]
    if loc == "uri":
        return 'r.label_timestamp("%s")' % ln if t == "timestamp" else 'r.label::<%s>("%s")' % (rust_type(shapes, m["shape"]), ln)
    if loc == "querystring":
        if t == "map":
            return "Ok::<_, RestError>(r.query_map(&[%s]))" % ", ".join('"%s"' % q for q in bound_query)
        if t == "list":
            return 'r.query_list::<%s>("%s")' % (rust_type(shapes, s["member"]["shape"]), ln)
        return 'r.query_timestamp("%s")' % ln if t == "timestamp" else 'r.query::<%s>("%s")' % (rust_type(shapes, m["shape"]), ln)
    if loc == "header":
        if m.get("jsonvalue") or s.get("jsonvalue"):
            raise NotImplementedError("a jsonvalue header (%s)" % mname)
        if t == "list":
            return 'r.header_list::<%s>("%s")' % (rust_type(shapes, s["member"]["shape"]), ln)
        return 'r.header_timestamp("%s")' % ln if t == "timestamp" else 'r.header::<%s>("%s")' % (rust_type(shapes, m["shape"]), ln)
    if loc == "headers":
        return 'Ok::<_, RestError>(r.header_prefix("%s"))' % ln
    if loc == "statusCode":
        return "Ok::<Option<%s>, RestError>(None)" % rust_type(shapes, m["shape"])
    raise NotImplementedError("location %s" % loc)


def write_from_rest(w, shapes, name):
    s = shapes[name]
    required = set(s.get("required", []))
    payload = s.get("payload")
    bound_query = [m.get("locationName", n) for n, m in s["members"].items() if m.get("location") == "querystring" and shapes[m["shape"]]["type"] != "map"]
    w("impl %s {" % name)
    w("    /// Reads the input from a REST-JSON request.")
    w("    pub fn from_rest(r: &RestRequest) -> Result<Self, RestError> {")
    if payload:
        w("        let mut v = Self::default();")
        pm = s["members"][payload]
        pt = shapes[pm["shape"]]["type"]
        reader = {"structure": "r.payload_json()?", "blob": "r.payload_blob()", "string": "r.payload_string()?"}.get(pt)
        if reader is None:
            raise NotImplementedError("a %s payload" % pt)
        if payload in required:
            w('        v.%s = r.required(%s, "%s")?;' % (snake(payload), reader, payload))
        else:
            w("        v.%s = %s;" % (snake(payload), reader))
    elif any("location" in m for m in s["members"].values()):
        w("        let mut v: Self = r.body()?;")
    else:
        w("        let v: Self = r.body()?;")
    for mname, m in s["members"].items():
        if "location" not in m:
            continue
        expr = rest_read_expr(shapes, m, mname, bound_query)
        if mname in required:
            w('        v.%s = r.required(%s?, "%s")?;' % (snake(mname), expr, m.get("locationName", mname)))
        else:
            w("        v.%s = %s?;" % (snake(mname), expr))
    w("        let _ = &r;")
    w("        Ok(v)")
    w("    }")
    w("}")
    w("")


def write_to_rest(w, shapes, name):
    s = shapes[name]
    required = set(s.get("required", []))
    payload = s.get("payload")
    w("impl %s {" % name)
    w("    /// The REST-JSON answer: bound members as headers or the status,")
    w("    /// the rest (or the payload member) as the body.")
    w("    pub fn to_rest(&self, status: u16) -> RestResponse {")
    body = []
    for mname, m in s["members"].items():
        loc = m.get("location")
        t = shapes[m["shape"]]["type"]
        ln = m.get("locationName", mname)
        if mname == payload:
            stmt = {"structure": "r.payload_json(v);", "blob": "r.payload_blob(v);", "string": "r.payload_string(v);"}.get(t)
            if stmt is None:
                raise NotImplementedError("a %s payload" % t)
        elif loc == "header":
            stmt = ('r.header_timestamp("%s", *v);' if t == "timestamp" else 'r.header_list("%s", v);' if t == "list" else 'r.header("%s", v);') % ln
        elif loc == "headers":
            stmt = 'r.header_prefix("%s", v);' % ln
        elif loc == "statusCode":
            stmt = "r.status = u16::try_from(*v).unwrap_or(status);"
        elif loc is None:
            continue
        else:
            raise NotImplementedError("an output member bound to %s" % loc)
        if mname in required:
            body.append("        { let v = &self.%s; %s }" % (snake(mname), stmt))
        else:
            body.append("        if let Some(v) = &self.%s { %s }" % (snake(mname), stmt))
    if body:
        w("        let mut r = RestResponse::json(status, self);")
        for line in body:
            w(line)
        w("        r")
    else:
        w("        RestResponse::json(status, self)")
    w("    }")
    w("}")
    w("")


def write_rest_tables(w, shapes, all_ops):
    w("/// Every operation's REST route (`http.method`, `http.requestUri`).")
    w("pub const ROUTES: &[RestRoute] = &[")
    for op in sorted(all_ops):
        h = all_ops[op]["http"]
        w('    RestRoute { method: "%s", uri: "%s", operation: "%s" },' % (h["method"], h["requestUri"], op))
    w("];")
    w("")
    w("/// Every error shape of the model: its code, HTTP status and message member.")
    w("pub const ERRORS: &[RestErrorShape] = &[")
    for name in sorted(shapes):
        s = shapes[name]
        if not s.get("exception"):
            continue
        status = s.get("error", {}).get("httpStatusCode", 500 if s.get("fault") else 400)
        members = s.get("members", {})
        msg = "Message" if "Message" in members else "message"
        w('    RestErrorShape { code: "%s", status: %d, message_member: "%s" },' % (name, status, msg))
    w("];")
    w("")


def write_output(w, shapes, ops, xml, rest=False):
    """The `Output` enum: every served operation's typed response, written
    as JSON/CBOR through serde, or as the XML document of Query or EC2."""
    w("/// Every operation's typed response; the edge writes it in the")
    w("/// protocol the request came in.")
    w("#[derive(Debug, Clone, PartialEq)]")
    w("pub enum Output {")
    for op in sorted(ops):
        outp = ops[op].get("output", {}).get("shape")
        w("    %s(%s)," % (op, outp) if outp else "    %s," % op)
    w("}")
    w("")
    w("impl Output {")
    w("    /// The operation's name.")
    w("    pub fn name(&self) -> &'static str {")
    w("        match self {")
    for op in sorted(ops):
        outp = ops[op].get("output", {}).get("shape")
        w('            Self::%s%s => "%s",' % (op, "(_)" if outp else "", op))
    w("        }")
    w("    }")
    if xml:
        flavour = xml[0]
        w("")
        if flavour == "ec2":
            w("    /// The EC2 response document: `<OpResponse xmlns=...>` with the")
            w("    /// `requestId` and the members, no result wrapper.")
        else:
            w("    /// The Query response document: `<OpResponse><OpResult>` with the")
            w("    /// members, then `<ResponseMetadata><RequestId>`.")
        w("    pub fn to_xml(&self, request_id: &str) -> String {")
        w("        let mut w = XmlWriter::document(&format!(\"{}Response\", self.name()), XML_NAMESPACE);")
        if flavour == "ec2":
            w('        w.scalar("requestId", &request_id.to_owned());')
        w("        match self {")
        for op in sorted(ops):
            o = ops[op].get("output")
            if o is None:
                if flavour == "ec2":
                    w('            Self::%s => w.scalar("return", &true),' % op)
                else:
                    w("            Self::%s => {}" % op)
                continue
            if flavour == "ec2" or "resultWrapper" not in o:
                w("            Self::%s(v) => v.write_members(&mut w)," % op)
            else:
                w('            Self::%s(v) => { w.start("%s"); v.write_members(&mut w); w.end("%s"); }' % (op, o["resultWrapper"], o["resultWrapper"]))
        w("        }")
        if flavour != "ec2":
            w('        w.start("ResponseMetadata");')
            w('        w.scalar("RequestId", &request_id.to_owned());')
            w('        w.end("ResponseMetadata");')
        w("        w.finish()")
        w("    }")
    if rest:
        w("")
        w("    /// The REST-JSON answer, with the operation's `http.responseCode`.")
        w("    pub fn to_rest(&self) -> RestResponse {")
        w("        match self {")
        for op in sorted(ops):
            code = ops[op]["http"].get("responseCode", 200)
            if ops[op].get("output"):
                w("            Self::%s(v) => v.to_rest(%d)," % (op, code))
            else:
                w("            Self::%s => RestResponse::empty(%d)," % (op, code))
        w("        }")
        w("    }")
    w("}")
    w("")
    w("impl Serialize for Output {")
    w("    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {")
    w("        match self {")
    for op in sorted(ops):
        outp = ops[op].get("output", {}).get("shape")
        if outp:
            w("            Self::%s(v) => v.serialize(s)," % op)
        else:
            w("            Self::%s => serde::ser::SerializeMap::end(s.serialize_map(Some(0))?)," % op)
    w("        }")
    w("    }")
    w("}")
    w("")


GENERATED_ITEMS = ("Action", "Output")


def rename_reserved(model):
    """Renames shapes that collide with the generated `Action`/`Output`
    enums to `<Name>Shape`, in the shape table and every reference."""
    clash = {n: n + "Shape" for n in GENERATED_ITEMS if n in model["shapes"]}
    if not clash:
        return model

    def walk(v):
        if isinstance(v, dict):
            return {k: (clash.get(x, x) if k == "shape" and isinstance(x, str) else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    model = walk(model)
    model["shapes"] = {clash.get(k, k): v for k, v in model["shapes"].items()}
    return model


def generate(model, operations=None):
    model = rename_reserved(model)
    shapes = model["shapes"]
    meta = model["metadata"]
    all_ops = model["operations"]
    ops = {k: v for k, v in all_ops.items() if operations is None or k in operations}
    protocols = meta.get("protocols", [meta["protocol"]])
    xml = [p for p in protocols if p in ("query", "ec2")]
    cbor = "smithy-rpc-v2-cbor" in protocols
    rest = "rest-json" in protocols
    wanted = None
    if operations is not None:
        wanted = set()
        for op in ops.values():
            for k in ("input", "output"):
                if k in op:
                    closure(shapes, op[k]["shape"], wanted)
        for e in sorted({e["shape"] for op in ops.values() for e in op.get("errors", [])}):
            closure(shapes, e, wanted)
    inputs, outputs = set(), set()
    for op in ops.values():
        if "input" in op:
            closure(shapes, op["input"]["shape"], inputs)
        if "output" in op:
            closure(shapes, op["output"]["shape"], outputs)
    out = []
    w = out.append
    w("// @generated by tools/codegen/gen_wire.py from botocore's %s %s model." % (meta["serviceId"], meta["apiVersion"]))
    w("// Do not edit by hand: change the generator and run it again.")
    w("#![allow(clippy::all, clippy::pedantic, missing_docs)]")
    if xml or cbor or rest or operations is not None:
        w("#![allow(unused_imports)]")  # a subset may reach no map
    w("")
    w("use std::collections::BTreeMap;")
    w("")
    w("use serde::{Deserialize, Serialize};")
    w("")
    if xml:
        w("use crate::codec::{FromQuery, QueryError, QueryInput, ToXml, XmlScalar, XmlWriter, key};")
        w("")
    if rest:
        w("use crate::codec::{RestError, RestErrorShape, RestRequest, RestResponse, RestRoute, RestText};")
        w("")
    if "targetPrefix" in meta:
        w("/// The `X-Amz-Target` prefix of this service.")
        w('pub const TARGET_PREFIX: &str = "%s";' % meta["targetPrefix"])
        w("")
    if xml or cbor or rest:
        w("/// The SigV4 signing name of this service.")
        w('pub const SIGNING_NAME: &str = "%s";' % meta.get("signingName", meta["endpointPrefix"]))
        w("")
        w("/// The model's API version (`Version=` of a Query request).")
        w('pub const API_VERSION: &str = "%s";' % meta["apiVersion"])
        w("")
        w("/// The protocols the model lists, in its order of preference.")
        w("pub const PROTOCOLS: &[&str] = &[%s];" % ", ".join('"%s"' % p for p in protocols))
        w("")
    if xml:
        w("/// The XML namespace of response documents.")
        w('pub const XML_NAMESPACE: &str = "%s";' % meta["xmlNamespace"])
        w("")
    for name in sorted(shapes):
        if wanted is not None and name not in wanted:
            continue
        s = shapes[name]
        if s["type"] == "string" and "enum" in s:
            w("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]")
            w("pub enum %s {" % name)
            seen = set()
            for i, v in enumerate(s["enum"]):
                vn = variant(v)
                while vn in seen:
                    vn += "_"
                seen.add(vn)
                if i == 0:
                    w("    #[default]")
                w('    #[serde(rename = "%s")]' % v)
                w("    %s," % vn)
            w("}")
            w("")
            w("impl %s {" % name)
            w("    /// Every value the model allows, in the model's order.")
            w("    pub const VALUES: &'static [&'static str] = &[%s];" % ", ".join('"%s"' % v for v in s["enum"]))
            w("")
            w("    /// The wire spelling of this value.")
            w("    pub fn as_str(&self) -> &'static str {")
            w("        match self {")
            seen = set()
            for v in s["enum"]:
                vn = variant(v)
                while vn in seen:
                    vn += "_"
                seen.add(vn)
                w('            Self::%s => "%s",' % (vn, v))
            w("        }")
            w("    }")
            w("}")
            w("")
            w("impl std::fmt::Display for %s {" % name)
            w("    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {")
            w("        f.write_str(self.as_str())")
            w("    }")
            w("}")
            w("")
            w("impl std::str::FromStr for %s {" % name)
            w("    type Err = ();")
            w("    fn from_str(s: &str) -> Result<Self, ()> {")
            w("        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| ())")
            w("    }")
            w("}")
            w("")
            if rest:
                w("impl RestText for %s {" % name)
                w("    fn rest_text(&self) -> String {")
                w("        self.as_str().to_owned()")
                w("    }")
                w("}")
                w("")
            if xml:
                w("impl XmlScalar for %s {" % name)
                w("    fn write_text(&self, out: &mut String) {")
                w("        out.push_str(self.as_str());")
                w("    }")
                w("}")
                w("")
        elif s["type"] == "structure":
            required = set(s.get("required", []))
            members = s["members"]
            w("#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]")
            w("pub struct %s {" % name)
            for mname, m in members.items():
                wire = m.get("locationName", mname)
                ty = rust_type(shapes, m["shape"])
                if shapes[m["shape"]]["type"] == "structure" and reaches(shapes, m["shape"], name):
                    ty = "Box<%s>" % ty  # a recursive shape (Logs' LogFieldType) needs indirection
                opt = "" if mname in required else "_opt"
                extra = ""
                mt = shapes[m["shape"]]["type"]
                if cbor and mt in ("timestamp", "blob"):
                    extra = ', serialize_with = "crate::codec::cbor::%s%s"' % (mt, opt)
                elif cbor and mt == "list" and shapes[shapes[m["shape"]]["member"]["shape"]]["type"] in ("timestamp", "blob"):
                    extra = ', serialize_with = "crate::codec::cbor::%s_list%s"' % (shapes[shapes[m["shape"]]["member"]["shape"]]["type"], opt)
                elif cbor and mt == "map" and shapes[shapes[m["shape"]]["value"]["shape"]]["type"] in ("timestamp", "blob"):
                    raise NotImplementedError("a map of timestamps or blobs in a CBOR model (%s.%s)" % (name, mname))
                if rest and mt == "timestamp" and ts_format(shapes, m) in ("iso8601", "rfc822") and "location" not in m:
                    if ts_format(shapes, m) != "iso8601":
                        raise NotImplementedError("a %s body timestamp" % ts_format(shapes, m))
                    extra = ', with = "crate::codec::rest::iso8601_body%s"' % opt
                if rest and ("location" in m or mname == s.get("payload")):
                    w("    #[serde(skip)]")
                else:
                    w('    #[serde(rename = "%s"' % wire + ("" if mname in required else ', default, skip_serializing_if = "Option::is_none"') + extra + ")]")
                if mname in required:
                    w("    pub %s: %s," % (snake(mname), ty))
                else:
                    w("    pub %s: Option<%s>," % (snake(mname), ty))
            w("}")
            w("")
            if xml and name in inputs:
                write_from_query(w, shapes, name, xml[0])
            if xml and name in outputs:
                write_to_xml(w, shapes, name)
            if rest and name in inputs:
                write_from_rest(w, shapes, name)
            if rest and name in outputs:
                write_to_rest(w, shapes, name)
    # The action enum: one variant per operation, carrying its typed request.
    w("/// Every operation of the service, parsed with its typed request.")
    w("#[derive(Debug, Clone, PartialEq)]")
    w("pub enum Action {")
    for op in sorted(ops):
        inp = ops[op].get("input", {}).get("shape")
        w("    %s(%s)," % (op, inp) if inp else "    %s," % op)
    w("}")
    w("")
    w("impl Action {")
    w("    /// Every operation name the model has, sorted.")
    w("    pub const NAMES: &'static [&'static str] = &[%s];" % ", ".join('"%s"' % op for op in sorted(all_ops)))
    w("")
    w("    /// The operation's name, as in `X-Amz-Target`.")
    w("    pub fn name(&self) -> &'static str {")
    w("        match self {")
    for op in sorted(ops):
        inp = ops[op].get("input", {}).get("shape")
        w('            Self::%s%s => "%s",' % (op, "(_)" if inp else "", op))
    w("        }")
    w("    }")
    w("")
    w("    /// Parses the JSON body of operation `name`.")
    w("    /// `Ok(None)` means the model has no such operation.")
    w("    pub fn parse(name: &str, body: &[u8]) -> Result<Option<Self>, serde_json::Error> {")
    w("        Ok(Some(match name {")
    for op in sorted(ops):
        inp = ops[op].get("input", {}).get("shape")
        if inp:
            w('            "%s" => Self::%s(serde_json::from_slice(body)?),' % (op, op))
        else:
            w('            "%s" => Self::%s,' % (op, op))
    w("            _ => return Ok(None),")
    w("        }))")
    w("    }")
    if cbor:
        w("")
        w("    /// Parses operation `name`'s input from any serde format (JSON,")
        w("    /// CBOR). `Ok(None)` means the model has no such operation.")
        w("    pub fn from_deserializer<'de, D: serde::Deserializer<'de>>(name: &str, d: D) -> Result<Option<Self>, D::Error> {")
        w("        Ok(Some(match name {")
        for op in sorted(ops):
            inp = ops[op].get("input", {}).get("shape")
            if inp:
                w('            "%s" => Self::%s(Deserialize::deserialize(d)?),' % (op, op))
            else:
                w('            "%s" => Self::%s,' % (op, op))
        w("            _ => return Ok(None),")
        w("        }))")
        w("    }")
    if rest:
        w("")
        w("    /// Reads operation `name`'s input from a REST-JSON request (the")
        w("    /// route in [`ROUTES`] named it). `Ok(None)` means no operation of")
        w("    /// this module has that name (see [`Self::NAMES`] for the model's).")
        w("    pub fn from_rest(name: &str, r: &RestRequest) -> Result<Option<Self>, RestError> {")
        w("        Ok(Some(match name {")
        for op in sorted(ops):
            inp = ops[op].get("input", {}).get("shape")
            if inp:
                w('            "%s" => Self::%s(%s::from_rest(r)?),' % (op, op, inp))
            else:
                w('            "%s" => Self::%s,' % (op, op))
        w("            _ => return Ok(None),")
        w("        }))")
        w("    }")
    if xml:
        w("")
        w("    /// Parses a Query request's parameters (`Action` names the")
        w("    /// operation). `Ok(None)` means no operation of this module has")
        w("    /// that name (see [`Self::NAMES`] for the model's).")
        w("    pub fn from_query(q: &QueryInput) -> Result<Option<Self>, QueryError> {")
        w("        Ok(Some(match q.action() {")
        for op in sorted(ops):
            inp = ops[op].get("input", {}).get("shape")
            if inp:
                w('            "%s" => Self::%s(%s::from_query(q, "")?),' % (op, op, inp))
            else:
                w('            "%s" => Self::%s,' % (op, op))
        w("            _ => return Ok(None),")
        w("        }))")
        w("    }")
    w("}")
    w("")
    if rest:
        write_rest_tables(w, shapes, all_ops)
    if xml or cbor or rest:
        write_output(w, shapes, ops, xml, rest)
    return "\n".join(out)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    service, version, dest = argv[1], argv[2], argv[3]
    check = "--check" in argv[4:]
    operations = None
    if "--operations" in argv[4:]:
        operations = set(argv[argv.index("--operations") + 1].split(","))
        missing = operations - set(load(service, version)["operations"])
        if missing:
            print("the %s model has no operations %s" % (service, sorted(missing)), file=sys.stderr)
            return 2
    text = generate(load(service, version), operations)
    if check:
        with open(dest) as f:
            if f.read() != text:
                print("%s is out of date: run tools/codegen/gen_wire.py %s" % (dest, " ".join(a for a in argv[1:] if a != "--check")), file=sys.stderr)
                return 1
        return 0
    with open(dest, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
