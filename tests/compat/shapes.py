"""Strict checks of responses against botocore's service model.

botocore's own parser is lenient: it drops members it does not know and
accepts most type mismatches. These checks are not: every member of a
response must exist in the operation's output shape, with the model's type
and enum values, and every required member must be present. JSON and CBOR
bodies are checked as data (`check`); Query and EC2 bodies as XML
(`check_xml`): every element a member by its serialized name, lists in
their wrapper and item elements, scalars in the model's text form.
"""
import base64
import datetime
import json
import numbers
import xml.etree.ElementTree as ET


class ShapeError(AssertionError):
    pass


def check(shape, value, path="$", rest=False):
    """`rest`: `value` is a REST-JSON body, which holds only the members
    not bound to a header, the status code or the URI."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            raise ShapeError("%s: expected object for %s, got %r" % (path, shape.name, value))
        bound = {k for k, m in shape.members.items() if rest and m.serialization.get("location")}
        for k, v in value.items():
            if k not in shape.members:
                raise ShapeError("%s: %s has no member %r" % (path, shape.name, k))
            if k in bound:
                raise ShapeError("%s: member %r of %s is bound to the %s, not the body" % (path, k, shape.name, shape.members[k].serialization["location"]))
            if v is None:
                raise ShapeError("%s.%s: null is not a value in AWS JSON" % (path, k))
            check(shape.members[k], v, "%s.%s" % (path, k))
        for req in shape.required_members:
            if req not in value and req not in bound:
                raise ShapeError("%s: required member %r of %s is missing" % (path, req, shape.name))
    elif t == "list":
        if not isinstance(value, list):
            raise ShapeError("%s: expected list, got %r" % (path, value))
        for i, v in enumerate(value):
            check(shape.member, v, "%s[%d]" % (path, i))
    elif t == "map":
        if not isinstance(value, dict):
            raise ShapeError("%s: expected map, got %r" % (path, value))
        for k, v in value.items():
            check(shape.value, v, "%s[%r]" % (path, k))
    elif t == "string":
        if not isinstance(value, str):
            raise ShapeError("%s: expected string, got %r" % (path, value))
        if shape.enum and value not in shape.enum:
            raise ShapeError("%s: %r is not one of %s" % (path, value, shape.enum))
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ShapeError("%s: expected integer, got %r" % (path, value))
    elif t == "timestamp" and isinstance(value, datetime.datetime):
        pass  # CBOR's tag 1, decoded by botocore
    elif t in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            raise ShapeError("%s: expected number, got %r" % (path, value))
    elif t == "boolean":
        if not isinstance(value, bool):
            raise ShapeError("%s: expected boolean, got %r" % (path, value))
    elif t == "blob":
        if isinstance(value, bytes):
            pass  # a CBOR byte string, decoded by botocore
        elif not isinstance(value, str):
            raise ShapeError("%s: expected a blob, got %r" % (path, value))
        else:
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise ShapeError("%s: a JSON blob must be base64, got %r" % (path, value))


def tag(el):
    return el.tag.rsplit("}", 1)[-1]


def xml_name(shape, default):
    return shape.serialization.get("name", default)


def check_xml(shape, el, path="$"):
    t = shape.type_name
    text = el.text or ""
    if t == "structure":
        names = {}
        for mname, m in shape.members.items():
            if m.type_name == "list" and m.serialization.get("flattened"):
                names[xml_name(m.member, xml_name(m, mname))] = (mname, m)
            else:
                names[xml_name(m, mname)] = (mname, m)
        seen = set()
        flat = {}
        for child in el:
            n = tag(child)
            if n not in names:
                raise ShapeError("%s: %s has no member element <%s>" % (path, shape.name, n))
            mname, m = names[n]
            if m.type_name == "list" and m.serialization.get("flattened"):
                flat.setdefault(mname, []).append(child)
                check_xml(m.member, child, "%s.%s[]" % (path, mname))
            else:
                if mname in seen:
                    raise ShapeError("%s: member %s appears twice" % (path, mname))
                check_xml(m, child, "%s.%s" % (path, mname))
            seen.add(mname)
        for req in shape.required_members:
            if req not in seen:
                raise ShapeError("%s: required member %r of %s is missing" % (path, req, shape.name))
    elif t == "list":
        item = xml_name(shape.member, "member")
        for i, child in enumerate(el):
            if tag(child) != item:
                raise ShapeError("%s: list items must be <%s>, got <%s>" % (path, item, tag(child)))
            check_xml(shape.member, child, "%s[%d]" % (path, i))
        if text.strip():
            raise ShapeError("%s: a list has text %r" % (path, text))
    elif t == "map":
        for child in el:
            if tag(child) != "entry":
                raise ShapeError("%s: map entries must be <entry>" % path)
    elif len(el):
        raise ShapeError("%s: scalar %s has child elements" % (path, shape.name))
    elif t == "string":
        if shape.enum and text not in shape.enum:
            raise ShapeError("%s: %r is not one of %s" % (path, text, shape.enum))
    elif t in ("integer", "long"):
        try:
            int(text)
        except ValueError:
            raise ShapeError("%s: expected integer, got %r" % (path, text))
    elif t in ("double", "float"):
        try:
            float(text)
        except ValueError:
            raise ShapeError("%s: expected number, got %r" % (path, text))
    elif t == "boolean":
        if text not in ("true", "false"):
            raise ShapeError("%s: expected true or false, got %r" % (path, text))
    elif t == "timestamp":
        try:
            datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            raise ShapeError("%s: expected an ISO 8601 timestamp, got %r" % (path, text))


def check_xml_response(op, protocol, content):
    """A Query or EC2 response document of operation `op`."""
    root = ET.fromstring(content)
    if tag(root) != op.name + "Response":
        raise ShapeError("root element is <%s>, not <%sResponse>" % (tag(root), op.name))
    children = list(root)
    if protocol == "ec2":
        if not children or tag(children[0]) != "requestId":
            raise ShapeError("an EC2 response starts with <requestId>")
        body = ET.Element("body")
        body.extend(children[1:])
        if op.output_shape is not None:
            check_xml(op.output_shape, body)
        return
    names = [tag(c) for c in children]
    wrapper = op.output_shape.serialization.get("resultWrapper") if op.output_shape is not None else None
    wrapper = wrapper or op.name + "Result"
    if names[-1:] != ["ResponseMetadata"] or len(list(children[-1])) != 1 or tag(children[-1][0]) != "RequestId":
        raise ShapeError("a Query response ends with <ResponseMetadata><RequestId>: %s" % names)
    if op.output_shape is not None:
        if names[:-1] != [wrapper]:
            raise ShapeError("a Query response holds <%s> and <ResponseMetadata>, got %s" % (wrapper, names))
        check_xml(op.output_shape, children[0])


def check_rest_error(op, http_response):
    """A REST-JSON error: `x-amzn-ErrorType` names it, and a modeled
    error's body holds only its shape's members (and `__type`)."""
    code = http_response.headers.get("x-amzn-ErrorType")
    if not code:
        raise ShapeError("a REST-JSON error without x-amzn-ErrorType: %r" % http_response.content)
    body = json.loads(http_response.content or b"{}")
    if body.get("__type", code) != code:
        raise ShapeError("__type %r and x-amzn-ErrorType %r differ" % (body.get("__type"), code))
    for shape in op.error_shapes:
        if shape.name == code:
            status = shape.metadata.get("error", {}).get("httpStatusCode")
            if status and status != http_response.status_code:
                raise ShapeError("%s has HTTP status %s in the model, got %s" % (code, status, http_response.status_code))
            check(shape, {k: v for k, v in body.items() if k != "__type"}, "$error")


def install(client):
    """Checks every successful response of `client` against its output shape,
    in whichever protocol the client speaks."""
    model = client.meta.service_model
    protocol = model.resolved_protocol

    def after_call(http_response, model, **_):
        if protocol == "rest-json" and http_response.status_code >= 300:
            check_rest_error(model, http_response)
            return
        if http_response.status_code != 200:
            return
        if protocol in ("query", "ec2"):
            check_xml_response(model, protocol, http_response.content)
            return
        if model.output_shape is None:
            return
        if protocol == "smithy-rpc-v2-cbor":
            import botocore.parsers
            body = botocore.parsers.RpcV2CBORParser()._initial_body_parse(http_response.content) or {}
        else:
            body = json.loads(http_response.content or b"{}")
        check(model.output_shape, body, rest=protocol == "rest-json")

    client.meta.events.register("after-call.*", after_call)
    return client
