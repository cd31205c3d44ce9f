"""ResultSet parsing in JSON, CSV and XML; malformed bodies are ServerErrors, not KeyErrors."""

from __future__ import annotations

import pytest

from xnatfs.errors import ServerError
from xnatfs.rest.resultset import parse_resultset, parse_resultset_csv, parse_resultset_xml

pytestmark = pytest.mark.unit

REAL_ROW = {"date": "2023-02-19", "xsiType": "xnat:mrSessionData", "xnat:subjectassessordata/id": "CIRXNAT2_E18718",
            "insert_date": "2023-09-27 17:31:21.352", "project": "Sandbox", "ID": "CIRXNAT2_E18718",
            "label": "exam0004", "URI": "/data/experiments/CIRXNAT2_E18718"}


def test_json_rows_total_and_title() -> None:
    rs = parse_resultset({"ResultSet": {"Result": [REAL_ROW], "totalRecords": "1", "title": "Matching experiments"}})
    assert rs.rows == (REAL_ROW,)
    assert rs.total == 1 and rs.title == "Matching experiments"
    assert len(rs) == 1 and list(rs) == [REAL_ROW]


def test_json_values_become_strings() -> None:
    rs = parse_resultset({"ResultSet": {"Result": [{"ID": 7, "ok": True, "none": None, "f": 1.5}]}})
    assert rs.rows[0] == {"ID": "7", "ok": "true", "none": "", "f": "1.5"}
    assert rs.total is None


@pytest.mark.parametrize("body", [{}, [], {"ResultSet": []}, {"ResultSet": {"Result": "x"}},
                                  {"ResultSet": {"Result": [1]}}, None])
def test_malformed_json_is_a_server_error(body: object) -> None:
    with pytest.raises(ServerError):
        parse_resultset(body)


def test_empty_result_is_fine() -> None:
    assert parse_resultset({"ResultSet": {"Result": []}}).rows == ()


def test_csv_with_quotes_and_commas() -> None:
    text = 'ID,label,URI\nS1,"a, b",/data/subjects/S1\nS2,plain,/data/subjects/S2\n'
    rs = parse_resultset_csv(text)
    assert rs.columns == ("ID", "label", "URI")
    assert rs.rows[0]["label"] == "a, b" and rs.rows[1]["ID"] == "S2"
    assert parse_resultset_csv("").rows == ()
    with pytest.raises(ServerError):
        parse_resultset_csv("a,b\n1,2,3\n")


def test_xml_listing() -> None:
    xml = ('<ResultSet totalRecords="2" title="Projects"><results><columns><column>ID</column><column>URI</column>'
           '</columns><rows><row><cell>P1</cell><cell>/data/projects/P1</cell></row>'
           '<row><cell>P2</cell><cell>/data/projects/P2</cell></row></rows></results></ResultSet>')
    rs = parse_resultset_xml(xml)
    assert rs.rows == ({"ID": "P1", "URI": "/data/projects/P1"}, {"ID": "P2", "URI": "/data/projects/P2"})
    assert rs.total == 2 and rs.title == "Projects"
    with pytest.raises(ServerError):
        parse_resultset_xml("<html/>")
