"""How REST-flavour conformance answers are read from the wire and judged against what a case expects."""

from __future__ import annotations

from ksqlpy.testing.rest_runner import _query_objects, matches, response_mismatch


def test_a_query_answer_is_read_object_by_object_whether_or_not_its_array_was_closed() -> None:
    framed = '[{"header":{"queryId":"q1","schema":"`K` STRING KEY"}},\n\n{"row":{"columns":["a"]}},\n' \
             '{"finalMessage":"Limit Reached"}]\n'
    assert _query_objects(framed) == [{"header": {"queryId": "q1", "schema": "`K` STRING KEY"}},
                                      {"row": {"columns": ["a"]}}, {"finalMessage": "Limit Reached"}]
    assert _query_objects(framed.rsplit("\n", 2)[0]) == _query_objects(framed)[:2]  # cut short mid-stream


def test_only_the_fields_a_case_names_are_compared_and_starts_with_matches_a_prefix() -> None:
    assert matches({"@type": "currentStatus"}, {"@type": "currentStatus", "commandId": "stream/`S`/create"})
    assert not matches({"@type": "streams"}, {"@type": "currentStatus"})
    assert matches({"queryId|starts_with": "transient_"}, {"queryId": "transient_3"})
    assert not matches({"queryId|starts_with": "SCALABLE"}, {"queryId": "transient_3"})
    assert matches({"columns": [1, 2.0]}, {"columns": [1.0, 2]})
    assert not matches({"columns": [1, 2]}, {"columns": [1, 2, 3]})


def test_query_rows_are_a_multiset_unless_order_is_asked_for() -> None:
    expected = {"query": [{"header": {"schema": "`K` STRING KEY"}}, {"row": {"columns": ["a"]}},
                          {"row": {"columns": ["b"]}}]}
    body = [{"header": {"queryId": "q", "schema": "`K` STRING KEY"}}, {"row": {"columns": ["b"]}},
            {"row": {"columns": ["a"]}}]
    assert response_mismatch(expected, {"status": 200, "body": body}, ordered=False) is None
    assert "expected rows" in str(response_mismatch(expected, {"status": 200, "body": body}, ordered=True))
    assert "expected rows" in str(response_mismatch(expected, {"status": 200, "body": body[:2]}, ordered=False))


def test_a_wrong_header_a_missing_final_message_and_an_error_answer_are_mismatches() -> None:
    expected = {"query": [{"header": {"schema": "`K` STRING"}}, {"finalMessage": "Limit Reached"}]}
    header = {"header": {"queryId": "q", "schema": "`K` STRING"}}
    assert "expected header" in str(response_mismatch(
        expected, {"status": 200, "body": [{"header": {"schema": "`K` STRING KEY"}}]}, ordered=False))
    assert "final message" in str(response_mismatch(expected, {"status": 200, "body": [header]}, ordered=False))
    assert "HTTP 400" in str(response_mismatch(expected, {"status": 400, "body": {"message": "no"}}, ordered=False))
    assert response_mismatch({"admin": {"@type": "currentStatus"}},
                             {"status": 200, "body": [{"@type": "currentStatus"}]}, ordered=False) is None
