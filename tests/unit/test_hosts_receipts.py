"""nixfly.hosts.receipts: a generation's receipt, written beside it on the host and read back."""

from __future__ import annotations

from pathlib import PurePosixPath

from nixfly import receipt
from nixfly.hosts import receipts
from nixfly.hosts.host import Host
from nixfly.runner import Runner


def test_a_receipt_lives_beside_its_generation_and_reads_back(tmp_path):
    app_dir = PurePosixPath(tmp_path)
    host = Host("local", Runner(), app_dir)
    assert receipts.read(host, app_dir, 2) is None
    kept = receipt.Receipt(
        app="oneshot",
        mode="integrated",
        target="local",
        release=2,
        revision="8601514",
        dirty=False,
        closure="/nix/store/c-oneshot",
        sbom_digest="",
        smoke=receipt.Smoke("/nix/store/c-oneshot", "passed", "tests/smoke -m integrated"),
        started_at="2026-12-06T11:00:00Z",
        finished_at="2026-12-06T11:01:00Z",
    )
    where = receipts.write(host, app_dir, kept)
    assert where == app_dir / "profile-2-receipt.json"  # beside profile-2-link
    assert receipts.read(host, app_dir, 2) == kept


def test_no_sbom_digest_for_a_closure_that_is_not_here():
    assert receipts.sbom_digest(Runner(), "/nix/store/00000000000000000000000000000000-not-here") == ""


def test_a_groups_receipts_step_names_each_hosts_receipt():
    from nixfly.pipeline import done, planned, skipped

    a, b = PurePosixPath("/h/a/profile-4-receipt.json"), PurePosixPath("/h/b/profile-4-receipt.json")
    wrote = receipts.group_outcome(
        [("a", (4, a), done(f"generation 4: {a}")), ("b", (4, b), skipped("generation 4 has its receipt"))]
    )
    assert (wrote.status, wrote.detail) == ("done", "wrote the receipt on 1 of 2 hosts; 1 had theirs")
    assert wrote.table is not None
    assert wrote.table.as_json()["rows"] == [
        {"host": "a", "generation": 4, "receipt": str(a), "this run": "written"},
        {"host": "b", "generation": 4, "receipt": str(b), "this run": "had it"},
    ]
    again = receipts.group_outcome([("a", (4, a), skipped("has it")), ("b", (4, b), skipped("has it"))])
    assert (again.status, again.detail) == (
        "skipped",
        "every host's live generation has its receipt (2 hosts)",
    )
    plan = receipts.group_outcome([("a", None, planned("would write"))])
    assert plan.status == "planned" and plan.table is None
