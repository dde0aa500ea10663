"""Strict checks of responses against botocore's service model.

botocore's own parser is lenient: it drops members it does not know and
accepts most type mismatches. These checks are not: every member of a
response must exist in the operation's output shape, with the model's type
and enum values, and every required member must be present.
"""
import json
import numbers


class ShapeError(AssertionError):
    pass


def check(shape, value, path="$"):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            raise ShapeError("%s: expected object for %s, got %r" % (path, shape.name, value))
        for k, v in value.items():
            if k not in shape.members:
                raise ShapeError("%s: %s has no member %r" % (path, shape.name, k))
            if v is None:
                raise ShapeError("%s.%s: null is not a value in AWS JSON" % (path, k))
            check(shape.members[k], v, "%s.%s" % (path, k))
        for req in shape.required_members:
            if req not in value:
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
    elif t in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            raise ShapeError("%s: expected number, got %r" % (path, value))
    elif t == "boolean":
        if not isinstance(value, bool):
            raise ShapeError("%s: expected boolean, got %r" % (path, value))


def install(client):
    """Checks every successful response of `client` against its output shape."""
    model = client.meta.service_model

    def after_call(http_response, model, **_):
        if http_response.status_code != 200 or model.output_shape is None:
            return
        body = json.loads(http_response.content or b"{}")
        check(model.output_shape, body)

    client.meta.events.register("after-call.*", after_call)
    return client
