"""The cluster of a multi-worker run: every member's TF_CONFIG, from loopback ports or a hosts file."""

from __future__ import annotations

import json

import pytest

from harness.errors import ConfigError
from harness.spec.cluster import Cluster, Task, loopback, parse_address, parse_hosts


def test_loopback_gives_the_chief_and_workers_distinct_ports_on_127_0_0_1() -> None:
    cluster = loopback(3, base_port=23456)
    assert cluster.addresses == ("127.0.0.1:23456", "127.0.0.1:23457", "127.0.0.1:23458")
    assert cluster.tasks == [Task("chief", 0), Task("worker", 0), Task("worker", 1)]
    assert [t.label for t in cluster.tasks] == ["chief", "worker-1", "worker-2"]
    configs = [json.loads(cluster.tf_config(task)) for task in cluster.tasks]
    spec = {"chief": ["127.0.0.1:23456"], "worker": ["127.0.0.1:23457", "127.0.0.1:23458"]}
    assert all(c["cluster"] == spec for c in configs)
    assert [c["task"] for c in configs] == [
        {"type": "chief", "index": 0},
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]


def test_one_member_is_a_chief_without_an_empty_worker_job() -> None:
    config = json.loads(loopback(1).tf_config(Task("chief", 0)))
    assert config == {"cluster": {"chief": ["127.0.0.1:23456"]}, "task": {"type": "chief", "index": 0}}


def test_a_hosts_file_names_members_on_other_hosts_chief_first() -> None:
    text = "# the chief\ngpu-a.example:2222\n\n10.0.0.7:2222  # second host\n[fd00::5]:2223\n"
    cluster = parse_hosts(text, workers=3)
    assert cluster.spec() == {"chief": ["gpu-a.example:2222"], "worker": ["10.0.0.7:2222", "[fd00::5]:2223"]}
    worker = json.loads(cluster.tf_config(Task("worker", 1)))
    assert worker["task"] == {"type": "worker", "index": 1} and worker["cluster"] == cluster.spec()


@pytest.mark.parametrize(
    ("text", "workers", "expected"),
    [
        ("a:1\nb:2\n", 3, "names 2 member(s) ['a:1', 'b:2'], the run has 3"),
        ("a:1\na:1\n", 2, "cluster address 'a:1' is given twice"),
        ("a\n", 1, "host:port with a port in 1-65535, got 'a'"),
        ("a:0\n", 1, "got 'a:0'"),
        ("a:70000\n", 1, "got 'a:70000'"),
        ("a b:1\n", 1, "got 'a b:1'"),
    ],
)
def test_bad_hosts_files_are_refused_with_the_value_quoted(text: str, workers: int, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_hosts(text, workers)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_refusals_of_the_cluster_itself() -> None:
    with pytest.raises(ConfigError, match="at least one address"):
        Cluster(())
    with pytest.raises(ConfigError, match="workers must be an integer >= 1, got 0"):
        loopback(0)
    with pytest.raises(ConfigError, match="task worker 1 is not a member of a 2-member cluster"):
        loopback(2).tf_config(Task("worker", 1))
    assert parse_address("[::1]:80") == ("[::1]", 80)
