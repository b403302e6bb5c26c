"""The test message of the protobuf wire tests, built without protoc.

Equivalent to this .proto (the Rust tests derive the same message with prost):

    syntax = "proto3";
    package tomodachi_rs_test;
    message Person { string id = 1; string name = 2; string notes = 3; }

`notes` makes a message big enough for tomodachi to compress it (over 60 000 bytes).
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_file = descriptor_pb2.FileDescriptorProto(
    name="tomodachi_rs_test_person.proto", package="tomodachi_rs_test", syntax="proto3"
)
_person = _file.message_type.add(name="Person")
for _number, _name in enumerate(("id", "name", "notes"), start=1):
    _person.field.add(
        name=_name,
        number=_number,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file)

Person = message_factory.GetMessageClass(_pool.FindMessageTypeByName("tomodachi_rs_test.Person"))


def describe(person, metadata, sender):
    """One JSON-able line about a received person (the notes by length only)."""
    return {
        "id": person.id,
        "name": person.name,
        "notes_len": len(person.notes),
        "data_encoding": metadata["data_encoding"],
        "protocol_version": metadata["protocol_version"],
        "topic": metadata["topic"],
        "sender": sender,
    }
