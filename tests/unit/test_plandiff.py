"""nixfly.plandiff: the plan's diff step says the change in one line and carries the whole diff."""

from nixfly import plandiff
from nixfly.closurediff import diff
from nixfly.sbom import Manifest, Package, StorePath

KIB = 1024


def path(name, *refs, size=KIB, digest="a"):
    return StorePath(f"/nix/store/{(digest * 32)[:32]}-{name}", "", size, tuple(refs))


LIBC = path("glibc-2.39-52", size=30 * KIB)
TOP = path("oneshot-integrated-0.1.0", LIBC.path)
BEFORE = Manifest(
    TOP.path, {p.path: p for p in (TOP, LIBC)}, {TOP.path: (Package("npm", "valibot", "1.5.0"),)}
)


def test_nothing_changes_is_said_so():
    step = plandiff.outcome(diff(BEFORE, BEFORE), "v3", dry=True)
    assert (step.status, step.detail) == ("planned", "Nothing changes against v3")
    assert step.table is not None and step.table.rows == (("Nothing changes",),)
    assert step.table.as_json()["data"]["nothing_changes"] is True


def test_a_change_is_counted_and_its_lines_are_the_table():
    libc = path("glibc-2.40-1", size=50 * KIB, digest="b")
    top = path("oneshot-integrated-0.1.0", libc.path, digest="b")
    after = Manifest(
        top.path, {p.path: p for p in (top, libc)}, {top.path: (Package("npm", "valibot", "1.6.0"),)}
    )
    changes = diff(BEFORE, after)
    step = plandiff.outcome(changes, "v3", dry=False)
    assert step.status == "done"
    assert step.detail == (
        "against v3: 1 changed, 1 npm package change(s); closure 31.0 KiB → 51.0 KiB (+20.0 KiB)"
    )
    assert step.table is not None and [r[0] for r in step.table.rows] == changes.lines()
    assert step.table.as_json()["data"] == changes.as_json()


def test_a_nixpacks_build_s_change_has_no_closure_size():
    def build(revision):
        props = (("nixfly:builder", "nixpacks"), ("nixfly:git:revision", revision))
        return Manifest(f"nixpacks:oneshot@{revision}", {}, {}, props)

    step = plandiff.outcome(diff(build("8601514"), build("9a0b1c2")), "v3", dry=True)
    assert step.detail == "against v3: nixpacks build: revision changed"
