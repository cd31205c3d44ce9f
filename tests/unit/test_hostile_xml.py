"""Hostile XML in every parser the client has (item XML, catalogs, ResultSet XML, XSD schemas).

XXE (external entities, parameter entities, external DTDs) and entity bombs (billion laughs,
quadratic blow-up) are refused, never expanded or fetched, in bounded time and memory; the secret
marker of a local file never reaches a parsed value or a message. Documents XNAT really sends still
parse, including text that merely mentions ``<!DOCTYPE``.
"""

from __future__ import annotations

import re
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xnatfs.errors import SchemaError, ServerError, XNATError
from xnatfs.rest.items import parse_catalog, parse_item_xml
from xnatfs.rest.resultset import parse_resultset_xml
from xnatfs.safexml import parse_xml
from xnatfs.schema.xsd import parse_schemas

pytestmark = pytest.mark.unit

MARKER = "SECRET-MARKER-0b5e"
ROOTS = {  # parser → (root element start, root element end) of a document it accepts
    "item": ('<xnat:Subject xmlns:xnat="http://nrg.xnat.org/xnat" ID="S1">', "</xnat:Subject>"),
    "catalog": ('<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog"><cat:entries>'
                '<cat:entry URI="a.dcm" name="a.dcm" digest="', '"/></cat:entries></cat:Catalog>'),
    "resultset": ("<ResultSet><results><columns><column>ID</column></columns><rows><row><cell>",
                  "</cell></row></rows></results></ResultSet>"),
    "schema": ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://example.org/t">'
               '<xs:complexType name="thing"><xs:annotation><xs:documentation>',
               "</xs:documentation></xs:annotation></xs:complexType></xs:schema>"),
}
PARSERS: dict[str, Callable[[bytes], Any]] = {
    "item": parse_item_xml,
    "catalog": parse_catalog,
    "resultset": parse_resultset_xml,
    "schema": lambda data: parse_schemas({"hostile": data}),
}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER)
    (tmp_path / "evil.dtd").write_text(f'<!ENTITY leak SYSTEM "file://{path}">')
    return path


def payloads(secret: Path, parser: str) -> dict[str, bytes]:
    start, end = ROOTS[parser]
    tag = re.match(r"<([\w:]+)", start).group(1)  # type: ignore[union-attr]
    dtd = secret.parent / "evil.dtd"
    lol = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    return {
        "xxe-file": f'<?xml version="1.0"?><!DOCTYPE {tag} [<!ENTITY x SYSTEM "file://{secret}">]>{start}&x;{end}',
        "xxe-parameter": (f'<?xml version="1.0"?><!DOCTYPE {tag} [<!ENTITY % p SYSTEM "file://{dtd}"> %p;]>'
                          f"{start}&leak;{end}"),
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE {tag} SYSTEM "file://{dtd}">{start}&leak;{end}',
        "billion-laughs": f'<?xml version="1.0"?><!DOCTYPE {tag} [{lol}]>{start}&l9;{end}',
        "quadratic": (f'<?xml version="1.0"?><!DOCTYPE {tag} [<!ENTITY a "{"A" * 100_000}">]>'
                      f'{start}{"&a;" * 20_000}{end}'),
        # Not caught by the byte scan (UTF-16): the parser's own limits and the docinfo check must hold.
        "utf16-xxe": f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE {tag} [<!ENTITY x SYSTEM "file://{secret}">]>'
                     f"{start}&x;{end}",
        "utf16-billion-laughs": f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE {tag} [{lol}]>{start}&l9;{end}',
    }


def encoded(name: str, text: str) -> bytes:
    return text.encode("utf-16") if name.startswith("utf16") else text.encode()


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("parser", sorted(PARSERS))
@pytest.mark.parametrize("attack", ["xxe-file", "xxe-parameter", "external-dtd", "billion-laughs", "quadratic",
                                    "utf16-xxe", "utf16-billion-laughs"])
def test_hostile_xml_is_refused_unexpanded_in_bounded_time_and_memory(secret: Path, parser: str, attack: str) -> None:
    data = encoded(attack, payloads(secret, parser)[attack])
    before = peak_rss_kib()
    started = time.monotonic()
    with pytest.raises((ServerError, SchemaError)) as info:
        PARSERS[parser](data)
    assert time.monotonic() - started < 1.0
    assert peak_rss_kib() - before < 64 * 1024  # ru_maxrss is in KiB: the peak grew by less than 64 MiB
    assert MARKER not in str(info.value)
    if parser != "schema":  # (the schema parser logs the reason and raises SchemaError naming the document)
        assert re.search("DOCTYPE|amplification|external entity", str(info.value)), str(info.value)


def test_the_docinfo_check_refuses_a_doctype_the_byte_scan_cannot_see() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ELEMENT r ANY>]><r/>'
    with pytest.raises(ServerError, match="DOCTYPE"):
        parse_xml(text.encode("utf-16"))


@pytest.mark.parametrize("document", [
    b"<a>" * 300 + b"</a>" * 300,                      # deeper than 256 levels
    b"<a>" + b"x" * (11 * 1024 * 1024) + b"</a>",      # a text node over 10 MB
])
def test_huge_trees_are_refused(document: bytes) -> None:
    with pytest.raises(ServerError, match="Malformed"):
        parse_xml(document)


def test_real_documents_still_parse_even_when_they_mention_doctype() -> None:
    row = parse_resultset_xml(b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- a listing -->'
                              b"<ResultSet><results><columns><column>note</column></columns><rows><row>"
                              b"<cell>&lt;!DOCTYPE html&gt; &amp; <![CDATA[<!DOCTYPE x>]]></cell></row></rows>"
                              b"</results></ResultSet>").rows[0]
    assert row == {"note": "<!DOCTYPE html> & <!DOCTYPE x>"}
    (entry,) = parse_catalog(b'<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog"><cat:entries>'
                             b'<cat:entry URI="1.dcm" name="1.dcm" digest="abc" size="3"/></cat:entries></cat:Catalog>')
    assert (entry.name, entry.size) == ("1.dcm", 3)


def test_every_error_is_an_xnat_error_with_eio() -> None:
    with pytest.raises(XNATError) as info:
        parse_xml(b'<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>')
    assert info.value.errno == 5
