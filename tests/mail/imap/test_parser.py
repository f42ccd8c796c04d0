"""The command grammar, fed raw bytes."""

from __future__ import annotations

import pytest

from onestack.mail.imap import fetch
from onestack.mail.imap.parser import CommandReader, SequenceSet
from onestack.mail.imap.responses import BadCommand
from onestack.mail.imap.search import parse_search


def test_quoted_string_with_escapes() -> None:
    reader = CommandReader(b'"a \\"b\\" \\\\c"')
    assert reader.astring() == 'a "b" \\c'
    assert reader.at_end()


def test_literal_is_taken_whole() -> None:
    reader = CommandReader(b"{5}\r\na b)c tail")
    assert reader.astring_bytes() == b"a b)c"
    assert reader.buffer[reader.position :] == b" tail"


def test_literal_shorter_than_announced() -> None:
    reader = CommandReader(b"{50}\r\nshort")
    with pytest.raises(BadCommand, match="shorter than announced"):
        reader.astring()


def test_unterminated_quoted_string() -> None:
    with pytest.raises(BadCommand, match="unterminated"):
        CommandReader(b'"abc').astring()


def test_unbalanced_list() -> None:
    reader = CommandReader(b"(a (b c)")
    with pytest.raises(BadCommand):
        reader.skip_list()


def test_deep_nesting_rejected() -> None:
    reader = CommandReader(b"(" * 100 + b")" * 100)
    with pytest.raises(BadCommand, match="nested too deeply"):
        reader.skip_list()


def test_sequence_set_with_star() -> None:
    numbers = CommandReader(b"2:4,7,9:*").sequence_set()
    assert numbers.select([1, 2, 3, 4, 5, 7, 8, 9, 12]) == [2, 3, 4, 7, 9, 12]


def test_uid_range_past_largest_includes_largest() -> None:
    # RFC 3501 section 6.4.8: "n:*" names the largest UID even when n is larger.
    numbers = CommandReader(b"100:*").sequence_set()
    assert numbers.select([3, 5]) == [5]


def test_sequence_zero_rejected() -> None:
    with pytest.raises(BadCommand):
        CommandReader(b"0:3").sequence_set()


def test_sequence_set_contains() -> None:
    numbers = SequenceSet(((None, 3),))
    assert numbers.contains(5, 10)
    assert not numbers.contains(2, 10)


def test_fetch_items_with_sections() -> None:
    items = fetch.parse_items(
        CommandReader(
            b"(UID BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> BODY[1.2.MIME])"
        )
    )
    assert [item.name for item in items] == ["UID", "BODY", "BODY"]
    assert items[1].section == "HEADER.FIELDS (FROM SUBJECT)"
    assert items[1].peek
    assert items[1].partial == (0, 100)
    assert items[2].part == (1, 2)
    assert items[2].text == "MIME"


def test_fetch_macro() -> None:
    items = fetch.parse_items(CommandReader(b"FAST"))
    assert [item.name for item in items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]


def test_unknown_fetch_item() -> None:
    with pytest.raises(BadCommand, match="unknown fetch item"):
        fetch.parse_items(CommandReader(b"(UID BOGUS)"))


def test_search_program_reads_only_what_it_needs() -> None:
    flags_only = parse_search(CommandReader(b"UNSEEN UID 1:*"))
    assert flags_only.content == "none"
    assert not flags_only.needs_metadata
    assert parse_search(CommandReader(b"LARGER 10")).needs_metadata
    assert parse_search(CommandReader(b"OR FROM a SUBJECT b")).content == "header"
    assert parse_search(CommandReader(b"SUBJECT a BODY b FROM c")).content == "full"


def test_search_unknown_key() -> None:
    with pytest.raises(BadCommand, match="unknown search key"):
        parse_search(CommandReader(b"FROBNICATE"))


def test_date_time() -> None:
    value = CommandReader(b'"17-Jul-1996 02:44:25 -0700"').date_time()
    assert value.utcoffset() is not None
    assert value.hour == 2
    with pytest.raises(BadCommand):
        CommandReader(b'"17-Foo-1996 02:44:25 -0700"').date_time()
