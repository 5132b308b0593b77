from nixfly.closurediff import Change, diff
from nixfly.sbom import Manifest, Package, StorePath

KIB = 1024


def path(name, *refs, size=KIB, digest="a"):
    full = f"/nix/store/{(digest * 32)[:32]}-{name}"
    return StorePath(full, "", size, tuple(refs))


def manifest(*paths, packages=()):
    root = paths[0].path
    return Manifest(root, {p.path: p for p in paths}, {root: tuple(packages)} if packages else {})


LIBC = path("glibc-2.39-52", size=30 * KIB)
WEB = path("web-0.1.0", LIBC.path, size=20 * KIB)
TOP = path("oneshot-integrated-0.1.0", WEB.path, LIBC.path)
BEFORE = manifest(TOP, WEB, LIBC, packages=[Package("npm", "valibot", "1.5.0")])


def test_the_same_closure_is_nothing_changes():
    same = diff(BEFORE, BEFORE)
    assert same.nothing
    assert same.lines() == ["Nothing changes"]
    assert same.as_json()["nothing_changes"] is True


def test_a_new_version_is_one_line_and_its_dependents_only_a_count():
    libc = path("glibc-2.40-1", size=50 * KIB, digest="b")
    web = path("web-0.1.0", libc.path, size=20 * KIB, digest="b")
    top = path("oneshot-integrated-0.1.0", web.path, libc.path, digest="b")
    changes = diff(BEFORE, manifest(top, web, libc, packages=BEFORE.packages))
    assert changes.changed == [Change("glibc", ("2.39-52",), ("2.40-1",), 20 * KIB)]
    assert (changes.added, changes.removed, changes.rebuilt, changes.packages) == ([], [], [], {})
    assert changes.dependents == 2
    assert changes.lines() == [
        "Version changes:",
        "  [U] glibc: 2.39-52 → 2.40-1, +20.0 KiB",
        "Rebuilt (same version, new contents):",
        "  and 2 path(s) that only reference what changed",
        "Closure size: 3 → 3 paths (3 added, 3 removed), 51.0 KiB → 71.0 KiB (+20.0 KiB)",
    ]


def test_an_added_system_package_is_named_alone():
    hello = path("hello-2.12.1", size=4 * KIB, digest="c")
    top = path("oneshot-integrated-0.1.0", WEB.path, LIBC.path, hello.path, digest="c")
    changes = diff(BEFORE, manifest(top, WEB, LIBC, hello, packages=BEFORE.packages))
    assert changes.added == [Change("hello", (), ("2.12.1",), 4 * KIB)]
    assert (changes.changed, changes.removed, changes.rebuilt) == ([], [], [])
    assert changes.lines()[:2] == ["Added packages:", "  [A] hello: 2.12.1"]  # under 8 KiB: no size shown


def test_a_removed_package_and_the_closure_size_delta():
    top = path("oneshot-integrated-0.1.0", LIBC.path, digest="d")
    changes = diff(BEFORE, manifest(top, LIBC, packages=BEFORE.packages))
    assert changes.removed == [Change("web", ("0.1.0",), (), -20 * KIB)]
    assert changes.as_json()["size_delta"] == -20 * KIB
    assert "  [R] web: 0.1.0, -20.0 KiB" in changes.lines()


def test_changed_code_of_the_same_version_names_that_package_only():
    web = path("web-0.1.0", LIBC.path, size=21 * KIB, digest="e")
    top = path("oneshot-integrated-0.1.0", web.path, LIBC.path, digest="e")
    changes = diff(BEFORE, manifest(top, web, LIBC, packages=BEFORE.packages))
    assert [(r.name, r.version) for r in changes.rebuilt] == [("web", "0.1.0")]
    assert changes.dependents == 1  # the top level, which only references the new web
    assert (changes.changed, changes.added, changes.removed, changes.packages) == ([], [], [], {})
    assert "  [*] web 0.1.0" in changes.lines()


def test_npm_and_hex_changes_are_their_own_groups():
    after = manifest(
        TOP,
        WEB,
        LIBC,
        packages=[
            Package("hex", "jason", "1.4.4"),
            Package("npm", "valibot", "1.6.0"),
            Package("npm", "zod", "3"),
        ],
    )
    changes = diff(BEFORE, after)
    assert changes.packages == {
        "hex": {"added": [Change("jason", (), ("1.4.4",))]},
        "npm": {
            "changed": [Change("valibot", ("1.5.0",), ("1.6.0",))],
            "added": [Change("zod", (), ("3",))],
        },
    }
    assert changes.lines()[:5] == [
        "hex packages:",
        "  [A] jason: 1.4.4",
        "npm packages:",
        "  [U] valibot: 1.5.0 → 1.6.0",
        "  [A] zod: 3",
    ]


def test_a_package_that_loses_one_of_two_versions_shows_the_empty_side():
    two = manifest(TOP, packages=[Package("npm", "ms", "2.0.0"), Package("npm", "ms", "2.1.3")])
    one = manifest(TOP, packages=[Package("npm", "ms", "2.1.3")])
    changes = diff(two, one)
    assert changes.packages == {"npm": {"changed": [Change("ms", ("2.0.0",), ())]}}
    assert "  [C] ms: 2.0.0 → ∅" in changes.lines()


def test_a_downgrade_and_a_change_of_several_versions_are_marked_as_nvd_marks_them():
    down = diff(
        manifest(TOP, packages=[Package("npm", "valibot", "1.5.0"), Package("npm", "ms", "1.0")]),
        manifest(TOP, packages=[Package("npm", "valibot", "1.5.0-pre"), Package("npm", "ms", "2.0")]),
    )
    assert down.lines()[1:3] == [
        "  [C] ms: 1.0 → 2.0".replace("[C]", "[U]"),
        "  [D] valibot: 1.5.0 → 1.5.0-pre",
    ]


def nixpacks(revision, config="nixpacks.toml sha256:aa", packages=()):
    build = (
        ("nixfly:builder", "nixpacks"),
        ("nixfly:git:revision", revision),
        ("nixfly:nixpacks:config", config),
    )
    return Manifest(f"nixpacks:oneshot@{revision}", {}, {"ai-server/bun.lock": tuple(packages)}, build)


def test_a_nixpacks_build_names_what_changed_in_it_and_no_closure_size():
    """Fly's builder makes a nixpacks closure: the diff names the revision, config and packages, no sizes."""
    valibot = [Package("npm", "valibot", "1.5.0")]
    assert diff(nixpacks("8601514", packages=valibot), nixpacks("8601514", packages=valibot)).nothing
    changes = diff(
        nixpacks("8601514", packages=valibot),
        nixpacks("9a0b1c2", "nixpacks.toml sha256:bb", [Package("npm", "valibot", "1.6.0")]),
    )
    assert changes.lines() == [
        "npm packages:",
        "  [U] valibot: 1.5.0 → 1.6.0",
        "Nixpacks build:",
        "  [C] revision: 8601514 → 9a0b1c2",
        "  [C] config: nixpacks.toml sha256:aa → nixpacks.toml sha256:bb",
    ]
    assert [c["name"] for c in changes.as_json()["build"]] == ["revision", "config"]
