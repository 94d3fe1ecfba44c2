"""CloudWatch Logs through boto3 and the aws CLI: log groups, streams,
PutLogEvents / GetLogEvents / FilterLogEvents, pagination, errors,
`aws logs tail --follow` (aws CLI v2, replayed) and persistence across
kill -9."""

import datetime
import re
import threading
import time
from collections import defaultdict

import botocore.exceptions
import botocore.utils
import pytest
from dateutil import tz

from conftest import Server, client, unique

DAY_MS = 86_400_000


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def logs(server):
    return client(server.endpoint, service="logs")


@pytest.fixture
def logs_raw(server):
    """Without client-side validation, so the server's own answers."""
    return client(server.endpoint, service="logs", validate=False)


def error_of(excinfo):
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


def make_stream(logs, group=None, stream="s"):
    group = group or unique("/berth/test")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put(logs, group, stream, messages, start=None, step=1):
    t = start if start is not None else now_ms() - 60_000
    events = [{"timestamp": t + i * step, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


# ----- log groups -----

def test_create_describe_delete_log_group(logs):
    name = unique("/ecs/app")
    before = now_ms()
    logs.create_log_group(logGroupName=name)
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert len(groups) == 1
    g = groups[0]
    assert g["logGroupName"] == name
    assert g["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{name}:*"
    assert g["logGroupArn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{name}"
    assert before - 5000 <= g["creationTime"] <= now_ms() + 5000
    assert g["storedBytes"] == 0
    assert g["metricFilterCount"] == 0
    assert g["logGroupClass"] == "STANDARD"
    assert "retentionInDays" not in g

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName=name)
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log group already exists")

    logs.delete_log_group(logGroupName=name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_group(logGroupName=name)
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_describe_log_groups_prefix_pattern_and_identifiers(logs):
    base = unique("/pfx")
    for n in ["a", "b", "c/x"]:
        logs.create_log_group(logGroupName=f"{base}/{n}")
    names = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=base)["logGroups"]]
    assert names == [f"{base}/a", f"{base}/b", f"{base}/c/x"]
    # Pattern: case-sensitive substring, and only the basic fields.
    by_pattern = logs.describe_log_groups(logGroupNamePattern=base[1:] + "/c")["logGroups"]
    assert [g["logGroupName"] for g in by_pattern] == [f"{base}/c/x"]
    assert set(by_pattern[0]) == {"logGroupName", "creationTime", "arn"}
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{base}/b"
    by_id = logs.describe_log_groups(logGroupIdentifiers=[f"{base}/a", arn])["logGroups"]
    assert [g["logGroupName"] for g in by_id] == [f"{base}/a", f"{base}/b"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix=base, logGroupNamePattern="x")
    assert error_of(e)[0] == "InvalidParameterException"


def test_describe_log_groups_paginates(logs):
    base = unique("/page")
    names = [f"{base}/{i:02d}" for i in range(7)]
    for n in reversed(names):
        logs.create_log_group(logGroupName=n)
    first = logs.describe_log_groups(logGroupNamePrefix=base, limit=3)
    assert [g["logGroupName"] for g in first["logGroups"]] == names[:3]
    assert first["nextToken"]
    pages = list(logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=base, PaginationConfig={"PageSize": 2}))
    assert [len(p["logGroups"]) for p in pages] == [2, 2, 2, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == names
    assert "nextToken" not in pages[-1]


def test_describe_log_groups_limit_and_token_are_checked(logs_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.describe_log_groups(limit=51)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.describe_log_groups(nextToken="not-a-token!")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.create_log_group(logGroupName="bad name!")
    assert error_of(e)[0] == "InvalidParameterException"


def test_retention_policy(logs):
    name = unique("/ret")
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 30
    for bad in (2, 0, 4000):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.put_retention_policy(logGroupName=name, retentionInDays=bad)
        code, message = error_of(e)
        assert code == "InvalidParameterException"
        assert "3653" in message
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 30
    logs.delete_retention_policy(logGroupName=name)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_retention_policy(logGroupName=name + "-nope", retentionInDays=7)
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_deletion_protection(logs):
    name = unique("/protected")
    logs.create_log_group(logGroupName=name, deletionProtectionEnabled=True)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["deletionProtectionEnabled"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_group(logGroupName=name)
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_stream(logGroupName=name, logStreamName="s")
    assert error_of(e)[0] == "ValidationException"
    logs.put_log_group_deletion_protection(logGroupIdentifier=name, deletionProtectionEnabled=False)
    logs.delete_log_group(logGroupName=name)


# ----- log streams -----

def test_create_describe_delete_log_stream(logs):
    group = unique("/streams")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="x")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="web/app/1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="web/app/1")
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log stream already exists")
    s = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert s["logStreamName"] == "web/app/1"
    assert s["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:log-stream:web/app/1"
    assert s["storedBytes"] == 0
    assert "lastEventTimestamp" not in s and "firstEventTimestamp" not in s

    t = now_ms() - 10_000
    put(logs, group, "web/app/1", ["one", "two"], start=t, step=1000)
    s = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert s["firstEventTimestamp"] == t
    assert s["lastEventTimestamp"] == t + 1000
    assert abs(s["lastIngestionTime"] - now_ms()) < 60_000
    assert s["uploadSequenceToken"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 6

    logs.delete_log_stream(logGroupName=group, logStreamName="web/app/1")
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 0
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_stream(logGroupName=group, logStreamName="web/app/1")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    # A stream created again under the same name starts empty.
    logs.create_log_stream(logGroupName=group, logStreamName="web/app/1")
    out = logs.get_log_events(logGroupName=group, logStreamName="web/app/1", startFromHead=True)
    assert out["events"] == []


def test_describe_log_streams_order_prefix_and_pages(logs):
    group = unique("/order")
    logs.create_log_group(logGroupName=group)
    t = now_ms() - 100_000
    # Streams named in one order, written in another.
    for i, name in enumerate(["c", "a", "d", "b"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, [f"event {name}"], start=t + i * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName="x-empty")

    def names(**kw):
        return [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group, **kw)["logStreams"]]

    assert names() == ["a", "b", "c", "d", "x-empty"]
    assert names(descending=True) == ["x-empty", "d", "c", "b", "a"]
    assert names(orderBy="LastEventTime") == ["x-empty", "c", "a", "d", "b"]
    assert names(orderBy="LastEventTime", descending=True) == ["b", "d", "a", "c", "x-empty"]
    assert names(logStreamNamePrefix="x") == ["x-empty"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert error_of(e)[0] == "InvalidParameterException"

    for kw, expected in [({}, ["a", "b", "c", "d", "x-empty"]),
                         ({"orderBy": "LastEventTime", "descending": True}, ["b", "d", "a", "c", "x-empty"])]:
        pages = list(logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}, **kw))
        assert [len(p["logStreams"]) for p in pages] == [2, 2, 1]
        assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == expected

    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupIdentifier=arn)["logStreams"]][:1] == ["a"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_streams(logGroupName=group, logGroupIdentifier=arn)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_streams(logGroupName=group + "-nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


# ----- PutLogEvents -----

def test_put_log_events_rules(logs):
    group, stream = make_stream(logs)
    t = now_ms()
    first = put(logs, group, stream, ["a", "b"])
    assert first["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in first
    # Sequence tokens are accepted and ignored, as AWS does now.
    second = logs.put_log_events(logGroupName=group, logStreamName=stream, sequenceToken="whatever",
                                 logEvents=[{"timestamp": t, "message": "c"}])
    assert second["nextSequenceToken"] != first["nextSequenceToken"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t, "message": "x"}, {"timestamp": t - 1, "message": "y"}])
    code, message = error_of(e)
    assert code == "InvalidParameterException" and "chronological" in message

    out = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": t - 15 * DAY_MS, "message": "too old"},
        {"timestamp": t - 14 * DAY_MS - 60_000, "message": "too old too"},
        {"timestamp": t, "message": "fine"},
        {"timestamp": t + 3 * 3_600_000, "message": "too new"},
    ])
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 3}
    messages = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                          startFromHead=True)["events"]]
    assert messages == ["a", "b", "c", "fine"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": t - 3 * DAY_MS, "message": "x"}, {"timestamp": t, "message": "y"}])
    code, message = error_of(e)
    assert code == "InvalidParameterException" and "24 hours" in message

    big = "x" * 600_000
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": t, "message": big}, {"timestamp": t, "message": big}])
    assert error_of(e)[0] == "InvalidParameterException"

    for g, s, message in [(group + "-nope", stream, "The specified log group does not exist."),
                          (group, "nope", "The specified log stream does not exist.")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.put_log_events(logGroupName=g, logStreamName=s, logEvents=[{"timestamp": t, "message": "x"}])
        assert error_of(e) == ("ResourceNotFoundException", message)


def test_retention_rejects_and_purges_expired_events(logs):
    group, stream = make_stream(logs)
    t = now_ms()
    put(logs, group, stream, ["three days old"], start=t - 3 * DAY_MS)
    put(logs, group, stream, ["recent"], start=t - 1000)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 20
    # Setting a retention deletes what it expires.
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["recent"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 6
    assert logs.describe_log_streams(logGroupName=group)["logStreams"][0]["firstEventTimestamp"] == t - 1000
    # And PutLogEvents rejects events older than it.
    out = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": t - 2 * DAY_MS, "message": "expired"}, {"timestamp": t, "message": "kept"}])
    assert out["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}


def test_put_log_events_model_limits(logs_raw):
    group, stream = make_stream(logs_raw)
    t = now_ms()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": "m"}] * 10_001)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[])
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": t, "message": ""}])
    assert error_of(e)[0] == "InvalidParameterException"


# ----- GetLogEvents -----

def test_get_log_events_head_tail_and_tokens(logs):
    group, stream = make_stream(logs)
    t = now_ms() - 100_000
    put(logs, group, stream, [f"m{i}" for i in range(10)], start=t, step=10)

    def msgs(out):
        return [e["message"] for e in out["events"]]

    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3)
    assert msgs(tail) == ["m7", "m8", "m9"]
    assert tail["nextForwardToken"].startswith("f/")
    assert tail["nextBackwardToken"].startswith("b/")
    e0 = tail["events"][0]
    assert set(e0) == {"timestamp", "message", "ingestionTime"}
    assert e0["timestamp"] == t + 70

    # Backward to the start; the end answers the same backward token.
    token, seen = tail["nextBackwardToken"], []
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        seen = msgs(page) + seen
        token = page["nextBackwardToken"]
    assert seen == [f"m{i}" for i in range(7)]

    # Forward from the head: the end answers the same forward token.
    head = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=4, startFromHead=True)
    assert msgs(head) == ["m0", "m1", "m2", "m3"]
    token, seen = head["nextForwardToken"], msgs(head)
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=4, nextToken=token,
                                   startFromHead=True)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        seen += msgs(page)
        token = page["nextForwardToken"]
    assert seen == [f"m{i}" for i in range(10)]
    # New events show up after the end token.
    put(logs, group, stream, ["late"], start=t + 1000)
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token, startFromHead=True)
    assert msgs(page) == ["late"]

    # startTime inclusive, endTime exclusive.
    ranged = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=t + 20, endTime=t + 50,
                                 startFromHead=True)
    assert msgs(ranged) == ["m2", "m3", "m4"]
    # By ARN.
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert msgs(logs.get_log_events(logGroupIdentifier=arn, logStreamName=stream, limit=1)) == ["late"]


def test_get_log_events_empty_stream_and_errors(logs, logs_raw):
    group, stream = make_stream(logs)
    out = logs.get_log_events(logGroupName=group, logStreamName=stream)
    assert out["events"] == []
    assert out["nextForwardToken"].startswith("f/") and out["nextBackwardToken"].startswith("b/")
    again = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=out["nextForwardToken"])
    assert again["nextForwardToken"] == out["nextForwardToken"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.get_log_events(logGroupName=group + "-nope", logStreamName=stream)
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken="f/garbage")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.get_log_events(logStreamName=stream)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs_raw.get_log_events(logGroupName=group, logStreamName=stream, limit=10_001)
    assert error_of(e)[0] == "InvalidParameterException"


def test_get_log_events_with_the_cli(logs, cli):
    group, stream = make_stream(logs)
    t = now_ms() - 10_000
    put(logs, group, stream, ["hello", "from", "the cli"], start=t)
    out = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
              "--start-from-head")
    assert [e["message"] for e in out["events"]] == ["hello", "from", "the cli"]
    assert out["nextForwardToken"].startswith("f/")
    tail = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--limit", "1")
    assert [e["message"] for e in tail["events"]] == ["the cli"]


# ----- FilterLogEvents -----

@pytest.fixture
def filled_group(logs):
    group = unique("/filter")
    logs.create_log_group(logGroupName=group)
    t = now_ms() - 100_000
    data = {
        "app/1": [(0, "INFO started"), (3, "ERROR disk full"), (6, "WARN low memory")],
        "app/2": [(1, "ERROR user not found"), (4, "INFO user-id: 7 ok"), (7, "ERROR Exiting now")],
        "worker/1": [(2, "DEBUG tick"), (5, "ERROR disk quota"), (8, "INFO done")],
    }
    for stream, events in data.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t + i, "message": m} for i, m in events])
    return group, t


def test_filter_log_events_patterns(logs, filled_group):
    group, t = filled_group

    def msgs(**kw):
        return [e["message"] for e in logs.filter_log_events(logGroupName=group, **kw)["events"]]

    # Interleaved across streams, by timestamp.
    assert len(msgs()) == 9
    assert msgs()[:3] == ["INFO started", "ERROR user not found", "DEBUG tick"]
    assert msgs(filterPattern="") == msgs()
    assert msgs(filterPattern="ERROR") == ["ERROR user not found", "ERROR disk full", "ERROR disk quota",
                                           "ERROR Exiting now"]
    assert msgs(filterPattern="ERROR disk") == ["ERROR disk full", "ERROR disk quota"]
    assert msgs(filterPattern='"disk full"') == ["ERROR disk full"]
    assert msgs(filterPattern='"user-id: 7"') == ["INFO user-id: 7 ok"]
    assert msgs(filterPattern="ERROR -Exiting -disk") == ["ERROR user not found"]
    assert msgs(filterPattern="?WARN ?DEBUG") == ["DEBUG tick", "WARN low memory"]
    assert msgs(filterPattern="error") == [], "patterns are case-sensitive"
    assert msgs(filterPattern="%disk [fq]%") == ["ERROR disk full", "ERROR disk quota"]

    out = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", logStreamNames=["app/2"])
    e = out["events"][0]
    assert set(e) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
    assert e["logStreamName"] == "app/2" and e["timestamp"] == t + 1
    assert out["searchedLogStreams"] == []
    assert msgs(logStreamNamePrefix="worker") == ["DEBUG tick", "ERROR disk quota", "INFO done"]
    assert msgs(logStreamNames=["app/1", "nope"], filterPattern="INFO") == ["INFO started"]
    # Both ends inclusive.
    assert msgs(startTime=t + 3, endTime=t + 5) == ["ERROR disk full", "INFO user-id: 7 ok", "ERROR disk quota"]
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert len(logs.filter_log_events(logGroupIdentifier=arn)["events"]) == 9


def test_filter_log_events_errors(logs, filled_group):
    group, _ = filled_group
    for kw, code in [({"logStreamNames": ["a"], "logStreamNamePrefix": "a"}, "InvalidParameterException"),
                     ({"filterPattern": '"unterminated'}, "InvalidParameterException"),
                     ({"filterPattern": '{ $.level = "x" }'}, "InvalidParameterException"),
                     ({"nextToken": "garbage"}, "InvalidParameterException")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.filter_log_events(logGroupName=group, **kw)
        assert error_of(e)[0] == code, kw
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName=group + "-nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_filter_log_events_paginates(logs, filled_group):
    group, _ = filled_group
    first = logs.filter_log_events(logGroupName=group, limit=4)
    assert len(first["events"]) == 4 and first["nextToken"]
    pages = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert [len(p["events"]) for p in pages] == [2, 2, 2, 2, 1]
    events = [e for p in pages for e in p["events"]]
    assert len({e["eventId"] for e in events}) == 9
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    errors = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, filterPattern="ERROR", PaginationConfig={"PageSize": 3}))
    assert [len(p["events"]) for p in errors] == [3, 1]
    assert "nextToken" not in errors[-1]


def test_filter_log_events_with_the_cli(cli, filled_group):
    group, _ = filled_group
    # The CLI follows nextToken itself; a small page size makes it page.
    out = cli("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR",
              "--page-size", "1")
    assert [e["message"] for e in out["events"]] == ["ERROR user not found", "ERROR disk full",
                                                    "ERROR disk quota", "ERROR Exiting now"]
    out = cli("logs", "filter-log-events", "--log-group-name", group, "--log-stream-name-prefix", "app",
              "--filter-pattern", '"disk full"')
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [("app/1", "ERROR disk full")]


# ----- `aws logs tail [--follow]` (aws CLI v2) -----
#
# The aws CLI installed here is v1, which has no `logs tail`, so what v2 does
# is replayed below. Source: awscli/customizations/logs/tail.py in aws/aws-cli
# (branch v2, read at commit 00d4d6e8d9acf07b08a8a37a299d5c7c734458fc);
# `start-live-tail` is another command (startlivetail.py, StartLiveTail) and
# `tail` never calls it, nor DescribeLogGroups (only the v2 auto-prompt's
# completer of the group name does). On the wire `tail` makes FilterLogEvents
# calls and nothing else:
#
#   {"logGroupName": GROUP, "interleaved": true, "startTime": <--since, epoch ms>,
#    ["filterPattern"], ["logStreamNames" | "logStreamNamePrefix"]}
#
# (no endTime, no limit, never logGroupIdentifier). --since (default 10m) is
# `<n>s|m|h|d|w` before now (UTC) or a timestamp botocore parses. Without
# --follow it walks the filter_log_events paginator once. With --follow it
# loops: an answer with a nextToken is followed at once by the same request
# with that nextToken; after an answer without one it drops nextToken, sets
# startTime to the newest timestamp it has printed (inclusive, so those
# events come back) and sleeps 5 s. It prints an event unless its eventId was
# already printed at the same timestamp, and after each answer keeps only the
# ids of the newest timestamp. So the server must keep eventIds stable, order
# events by timestamp across streams, treat startTime as inclusive, and answer
# a nextToken only while there is more.
#
# The classes below are a port of that code (same calls, same parameters, same
# de-duplication, same formatting, with colour off as when stdout is not a
# terminal). The 5 s sleep is the `sleep` the source's generator takes as a
# parameter, here one the test controls.

class TailTimestamps:
    """tail.py's TimestampUtils."""

    RELATIVE = re.compile(r"(?P<amount>\d+)(?P<unit>s|m|h|d|w)$")
    TO_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 24 * 3600, "w": 7 * 24 * 3600}

    def __init__(self):
        # datetime.utcnow(): naive UTC.
        self._now = lambda: datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    def to_epoch_millis(self, since):
        m = self.RELATIVE.match(since)
        if m:
            when = self._now() - datetime.timedelta(
                seconds=int(m.group("amount")) * self.TO_SECONDS[m.group("unit")])
        else:
            when = botocore.utils.parse_timestamp(since)
        return int(botocore.utils.datetime2timestamp(when) * 1000)

    def to_datetime(self, millis):
        return datetime.datetime.fromtimestamp(millis / 1000.0, tz.tzutc())


def tail_detailed_line(event):
    """tail.py's DetailedLogEventsFormatter (the default --format), no colour."""
    line = "%s %s %s" % (event["timestamp"].isoformat(timespec="microseconds"),
                         event["logStreamName"], event["message"])
    return line.rstrip() + "\n"


def tail_short_line(event):
    """tail.py's ShortLogEventsFormatter (--format short), no colour."""
    line = "%s %s" % (event["timestamp"].strftime("%Y-%m-%dT%H:%M:%S"), event["message"])
    return line.rstrip() + "\n"


class TailEvents:
    """tail.py's BaseLogEventsGenerator with its NoFollow (follow=False) and
    Follow (follow=True) _filter_log_events."""

    TIME_TO_SLEEP = 5

    def __init__(self, client, follow, sleep=time.sleep):
        self._client = client
        self._follow = follow
        self._sleep = sleep
        self._timestamps = TailTimestamps()

    def iter_log_events(self, group_name, start=None, filter_pattern=None,
                        log_stream_names=None, log_stream_name_prefix=None):
        kwargs = {"logGroupName": group_name, "interleaved": True}
        if start is not None:
            kwargs["startTime"] = self._timestamps.to_epoch_millis(start)
        if filter_pattern is not None:
            kwargs["filterPattern"] = filter_pattern
        if log_stream_names is not None:
            kwargs["logStreamNames"] = log_stream_names
        if log_stream_name_prefix is not None:
            kwargs["logStreamNamePrefix"] = log_stream_name_prefix
        source = self._follow_events(kwargs) if self._follow else self._all_events(kwargs)
        for event in source:
            event["ingestionTime"] = self._timestamps.to_datetime(event["ingestionTime"])
            event["timestamp"] = self._timestamps.to_datetime(event["timestamp"])
            yield event

    def _all_events(self, kwargs):
        for page in self._client.get_paginator("filter_log_events").paginate(**kwargs):
            yield from page["events"]

    def _follow_events(self, kwargs):
        try:
            yield from self._poll(kwargs)
        except KeyboardInterrupt:
            # Control-C is the only way out of --follow.
            return

    def _poll(self, kwargs):
        ids_at = defaultdict(set)  # timestamp -> eventIds printed
        while True:
            response = self._client.filter_log_events(**kwargs)
            for event in response["events"]:
                if event["eventId"] not in ids_at[event["timestamp"]]:
                    ids_at[event["timestamp"]].add(event["eventId"])
                    yield event
            if ids_at:
                newest = max(ids_at)
                ids_at = defaultdict(set, {newest: ids_at[newest]})
            if "nextToken" in response:
                kwargs["nextToken"] = response["nextToken"]
            else:
                if ids_at:
                    kwargs["startTime"] = max(ids_at)
                kwargs.pop("nextToken", None)
                self._sleep(self.TIME_TO_SLEEP)


class RecordingLogs:
    """A logs client that records each FilterLogEvents request and whether
    its answer carried a nextToken."""

    def __init__(self, logs):
        self._logs = logs
        self.calls = []

    def filter_log_events(self, **kwargs):
        request = dict(kwargs)
        response = self._logs.filter_log_events(**kwargs)
        self.calls.append((request, "nextToken" in response, len(response["events"])))
        return response

    def get_paginator(self, name):
        return self._logs.get_paginator(name)


class Follower:
    """Runs `aws logs tail GROUP --follow` in a thread. Its sleep between
    polls waits for the test: `poll()` lets one full poll (every page, up to
    an answer without nextToken) run and waits for it; `run_free()` lets it
    poll every 50 ms; `stop()` is Control-C during the sleep."""

    def __init__(self, logs, group, **tail_args):
        self.client = RecordingLogs(logs)
        self.lines = []
        self.sleeps = []
        self._cond = threading.Condition()
        self._allowed = 0
        self._free = False
        self._stopping = False
        self._error = None
        events = TailEvents(self.client, follow=True, sleep=self._sleep)
        self._events = events.iter_log_events(group, **tail_args)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._wait(lambda: len(self.sleeps) >= 1)

    def _run(self):
        try:
            for event in self._events:
                self.lines.append(tail_detailed_line(event))
        except BaseException as e:  # noqa: B902 - reported by the test thread
            self._error = e
        finally:
            with self._cond:
                self._cond.notify_all()

    def _sleep(self, seconds):
        with self._cond:
            self.sleeps.append(seconds)
            n = len(self.sleeps)
            self._cond.notify_all()
            while not (self._stopping or self._allowed >= n):
                if self._free:
                    self._cond.wait(0.05)
                    break
                self._cond.wait()
            if self._stopping:
                raise KeyboardInterrupt

    def _wait(self, done, timeout=30):
        with self._cond:
            ok = self._cond.wait_for(lambda: done() or not self._thread.is_alive(), timeout)
        if self._error is not None:
            raise self._error
        assert ok and self._thread.is_alive(), "tail --follow stopped or hung"

    def poll(self):
        with self._cond:
            target = len(self.sleeps) + 1
            self._allowed = len(self.sleeps)
            self._cond.notify_all()
        self._wait(lambda: len(self.sleeps) >= target)

    def run_free(self):
        with self._cond:
            self._free = True
            self._cond.notify_all()

    def wait_for_lines(self, n, timeout=30):
        self._wait(lambda: len(self.lines) >= n, timeout)

    def polls_after(self, k):
        """Wait until k more polls have completed."""
        with self._cond:
            target = len(self.sleeps) + k
        self._wait(lambda: len(self.sleeps) >= target)

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(30)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error


def detailed(ts, stream, message):
    """The line tail prints for an event, computed independently of the port."""
    secs, ms = divmod(ts, 1000)
    when = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{ms:03d}000+00:00 {stream} {message}".rstrip() + "\n"


class Writer:
    """PutLogEvents in batches, remembering what tail should print: every
    event, ordered by timestamp, then by arrival."""

    def __init__(self, logs, group):
        self.logs, self.group, self.events = logs, group, []

    def stream(self, name):
        self.logs.create_log_stream(logGroupName=self.group, logStreamName=name)

    def put(self, stream, events, printed=True):
        out = self.logs.put_log_events(logGroupName=self.group, logStreamName=stream,
                                       logEvents=[{"timestamp": t, "message": m} for t, m in events])
        assert "rejectedLogEventsInfo" not in out
        if printed:
            self.events.extend((t, stream, m) for t, m in events)

    def expected(self):
        return [detailed(t, s, m) for t, s, m in sorted(self.events, key=lambda e: e[0])]


def test_tail_follow_prints_every_event_once_in_order(logs):
    group = unique("/tail")
    logs.create_log_group(logGroupName=group)
    w = Writer(logs, group)
    for s in ("web/1", "web/2", "worker/1"):
        w.stream(s)
    now = now_ms()
    # Before following: one event older than --since 10m, three within it
    # (two at the same millisecond in two streams).
    w.put("web/1", [(now - 20 * 60_000, "before --since")], printed=False)
    w.put("web/2", [(now - 5 * 60_000, "already there 1")])
    w.put("worker/1", [(now - 5 * 60_000, "already there 2"), (now - 4 * 60_000, "already there 3")])

    started = now_ms()
    f = Follower(logs, group, start="10m")
    try:
        assert f.lines == w.expected()
        first = f.client.calls[0][0]
        assert set(first) == {"logGroupName", "interleaved", "startTime"}
        assert first["logGroupName"] == group and first["interleaved"] is True
        assert started - 600_000 - 1000 <= first["startTime"] <= now_ms() - 600_000 + 1000

        t = now - 3 * 60_000
        # Events at the newest printed timestamp arrive after it was printed,
        # in another stream: tail asks for that timestamp again and must print
        # only the new ones.
        w.put("web/1", [(t, "a1"), (t + 1, "a2"), (t + 1, "a3")])
        f.poll()
        w.put("web/2", [(t + 1, "b1 same ms as a2 and a3"), (t + 2, "b2")])
        w.put("worker/1", [(t + 2, "c1 same ms as b2"), (t + 3, "c2")])
        f.poll()
        f.poll()  # nothing new: the events at t + 3 come back and are skipped
        # A stream created while following; trailing whitespace is trimmed.
        w.stream("worker/2")
        w.put("worker/2", [(t + 3, "d1 same ms as c2"), (t + 4, "d2 two lines\nsecond  \n")])
        f.poll()
        assert f.lines == w.expected()

        # More than a page (about 1 MB) at once: tail follows the nextToken.
        pad = "x" * 1000
        for i, s in enumerate(("web/1", "web/2", "worker/1")):
            w.put(s, [(t + 10 + 3 * j + i, f"burst {s} {j} {pad}") for j in range(400)])
        f.poll()
        assert f.lines == w.expected()
        assert any(had_token for _, had_token, _ in f.client.calls), "no answer had a nextToken"

        # Polling on its own while batches keep coming, in four streams,
        # three batches at each millisecond. (Timestamps never go back: an
        # event older than the newest one tail has printed is one tail will
        # not ask for again, on AWS too.)
        f.run_free()
        t2 = t + 2000
        streams = ["web/1", "web/2", "worker/1", "worker/2"]
        for k in range(60):
            ts = t2 + k // 3
            batch = [(ts, f"live {k}.0"), (ts, f"live {k}.1")]
            if k % 3 == 2:
                batch.append((ts + 1, f"live {k}.2"))
            w.put(streams[k % 4], batch)
            time.sleep(0.01)
        f.wait_for_lines(len(w.events))
        f.polls_after(3)
    finally:
        f.stop()

    expected = w.expected()
    assert len(set(expected)) == len(expected)
    assert f.lines == expected
    assert set(f.sleeps) == {5}

    # The requests: the same parameters throughout; a nextToken only right
    # after an answer that had one, with the same startTime; otherwise the
    # startTime of the newest event printed so far.
    calls = f.client.calls
    for i, (req, had_token, _) in enumerate(calls):
        assert {k: v for k, v in req.items() if k not in ("startTime", "nextToken")} == {
            "logGroupName": group, "interleaved": True}
        if i == 0:
            continue
        prev, prev_had_token, _ = calls[i - 1]
        if prev_had_token:
            assert "nextToken" in req and req["startTime"] == prev["startTime"]
        else:
            assert "nextToken" not in req
        assert req["startTime"] >= prev["startTime"]
    assert calls[-1][0]["startTime"] == max(t for t, _, _ in w.events)

    # Without --follow: the paginator, once, prints the same.
    once = TailEvents(logs, follow=False).iter_log_events(group, start="10m")
    assert [tail_detailed_line(e) for e in once] == expected
    short = next(TailEvents(logs, follow=False).iter_log_events(group, start="10m"))
    when = datetime.datetime.fromtimestamp((now - 5 * 60_000) // 1000, datetime.timezone.utc)
    assert tail_short_line(short) == when.strftime("%Y-%m-%dT%H:%M:%S") + " already there 1\n"


def test_tail_follow_with_filter_pattern_and_streams(logs):
    group = unique("/tail")
    logs.create_log_group(logGroupName=group)
    w = Writer(logs, group)
    for s in ("app/1", "app/2", "db/1"):
        w.stream(s)
    t = now_ms() - 60_000
    w.put("app/1", [(t, "ERROR early")])
    w.put("db/1", [(t, "ERROR in db")], printed=False)
    # --filter-pattern, and --log-stream-name-prefix or --log-stream-names.
    for args, wire in [({"log_stream_name_prefix": "app"}, {"logStreamNamePrefix": "app"}),
                       ({"log_stream_names": ["app/1", "app/2"]}, {"logStreamNames": ["app/1", "app/2"]})]:
        f = Follower(logs, group, start="2m", filter_pattern="ERROR", **args)
        try:
            assert f.lines == [detailed(t, "app/1", "ERROR early")]
            req = f.client.calls[0][0]
            assert req == {"logGroupName": group, "interleaved": True, "startTime": req["startTime"],
                           "filterPattern": "ERROR", **wire}
        finally:
            f.stop()
    f = Follower(logs, group, start="2m", filter_pattern="ERROR", log_stream_name_prefix="app")
    try:
        f.poll()
        w.put("app/2", [(t, "ERROR same ms, later"), (t + 5, "INFO not printed")])
        w.put("db/1", [(t + 5, "ERROR other stream")], printed=False)
        w.put("app/1", [(t + 6, "ERROR last")])
        f.poll()
        f.poll()
    finally:
        f.stop()
    w.events = [e for e in w.events if "ERROR" in e[2]]
    assert f.lines == w.expected()


# ----- Deleting a group deletes its events -----

def test_delete_log_group_deletes_streams_and_events(logs):
    group, stream = make_stream(logs)
    put(logs, group, stream, ["one", "two"])
    logs.delete_log_group(logGroupName=group)
    logs.create_log_group(logGroupName=group)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    assert logs.filter_log_events(logGroupName=group)["events"] == []
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 0
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    assert logs.get_log_events(logGroupName=group, logStreamName=stream)["events"] == []


# ----- Persistence -----

def test_log_events_survive_kill_9(tmp_path):
    s = Server(str(tmp_path)).start()
    logs = client(s.endpoint, service="logs")
    logs.create_log_group(logGroupName="/durable")
    logs.put_retention_policy(logGroupName="/durable", retentionInDays=7)
    logs.create_log_stream(logGroupName="/durable", logStreamName="s")
    t = now_ms() - 10_000
    put(logs, "/durable", "s", [f"line {i}" for i in range(500)], start=t)
    s.kill9()
    s.start()
    logs = client(s.endpoint, service="logs")
    g = logs.describe_log_groups(logGroupNamePrefix="/durable")["logGroups"][0]
    assert g["retentionInDays"] == 7
    events = logs.get_log_events(logGroupName="/durable", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in events] == [f"line {i}" for i in range(500)]
    assert [e["message"] for e in logs.filter_log_events(logGroupName="/durable",
                                                         filterPattern='"line 49"')["events"]] == [
        "line 49"] + [f"line {i}" for i in range(490, 500)]
    assert s.stop() == 0
