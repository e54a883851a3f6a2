"""Naming the fleet host whose numbers differ: only when a majority or a reference decides it."""

from __future__ import annotations

import pytest

from harness.analysis.fleet import odd_hosts, probe_self_check


def test_hosts_that_agree_are_ok() -> None:
    finding = odd_hosts("loss", {"a": 1.0, "b": 1.0 + 1e-13, "c": 1.0}, 1e-9)
    assert (finding.status, finding.odd) == ("OK", ())


def test_the_odd_host_out_of_three_is_named() -> None:
    finding = odd_hosts("loss", {"a": 1.0, "bad-gpu": 1.5, "c": 1.0}, 1e-9)
    assert (finding.status, finding.odd) == ("FAIL", ("bad-gpu",))
    assert "bad-gpu differ from the 2 others" in finding.summary


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_two_hosts_that_disagree_are_inconclusive_whichever_comes_first(order: tuple[str, str]) -> None:
    values = {"a": 1.0, "b": 2.0}
    finding = odd_hosts("loss", {h: values[h] for h in order}, 1e-9)
    assert (finding.status, finding.odd) == ("INCONCLUSIVE", ())
    assert "--reference" in finding.summary


def test_a_reference_decides_two_hosts() -> None:
    finding = odd_hosts("loss", {"a": 1.0, "b": 2.0}, 1e-9, reference="b")
    assert (finding.status, finding.odd) == ("FAIL", ("a",))


def test_a_split_without_majority_is_inconclusive() -> None:
    finding = odd_hosts("loss", {"a": 1.0, "b": 1.0, "c": 2.0, "d": 2.0}, 1e-9)
    assert finding.status == "INCONCLUSIVE"


def test_a_host_without_a_value_is_named_and_a_nan_never_agrees() -> None:
    assert odd_hosts("loss", {"a": 1.0, "b": None}, 1e-9).odd == ("b",)
    assert odd_hosts("loss", {"a": 1.0, "b": float("nan"), "c": 1.0}, 1e-9).odd == ("b",)


def test_a_probe_beyond_its_own_float64_tolerance_names_its_host_alone() -> None:
    finding = probe_self_check({"a": True, "b": False})
    assert (finding.status, finding.odd) == ("FAIL", ("b",))
    assert probe_self_check({"a": True, "b": True}).status == "OK"
